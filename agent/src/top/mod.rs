//! `apitap top`: a live terminal view of a running agent, from its JSON API.
//!
//! ```text
//! client task ──(every --interval, or at once when a sort changes)──▶ six GETs ──▶ Panes
//! terminal loop: keys ▸ View (sort, filter, service) ▸ draw(header, services, endpoints,
//!                clients, alerts, capture)
//! ```
//! The token comes from `--token`, else `APITAP_API_TOKEN`, else `<data-dir>/api-token` (the file
//! the agent generates). `q` (or Esc, or Ctrl-C) leaves with exit code 0.

mod client;
pub mod model;
mod view;

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

use crate::api::TOKEN_FILE;
use crate::cli::TopArgs;
use crate::exit::usage;
use client::{Client, Query};
use model::{Panes, View};

/// Everything the screen shows.
#[derive(Debug, Default)]
pub struct State {
    pub url: String,
    /// The last round that succeeded.
    pub panes: Option<Panes>,
    /// Why the last round failed (the panes then show the round before).
    pub error: Option<String>,
    pub view: View,
    /// The filter being typed, while `/` is active.
    pub editing: Option<String>,
    /// Endpoint rows scrolled past.
    pub scroll: usize,
}

/// What a key asks of the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    Quit,
    /// Fetch now (a new sort order or `r`).
    Fetch,
    Redraw,
}

impl State {
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Enter => {
                    self.view.filter = std::mem::take(text);
                    self.editing = None;
                    self.scroll = 0;
                }
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            }
            return Action::Redraw;
        }
        let empty = Panes::default();
        let panes = self.panes.as_ref().unwrap_or(&empty);
        match key.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('s') => {
                self.view.endpoint_sort = self.view.endpoint_sort.next();
                self.scroll = 0;
                return Action::Fetch;
            }
            KeyCode::Char('c') => {
                self.view.client_sort = self.view.client_sort.next();
                return Action::Fetch;
            }
            KeyCode::Char('r') => return Action::Fetch,
            KeyCode::Char('/') => self.editing = Some(self.view.filter.clone()),
            KeyCode::Right | KeyCode::Tab => {
                self.view.switch_service(panes, true);
                self.scroll = 0;
            }
            KeyCode::Left | KeyCode::BackTab => {
                self.view.switch_service(panes, false);
                self.scroll = 0;
            }
            KeyCode::Down => self.scroll += 1,
            KeyCode::Up => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll += 10,
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Home => self.scroll = 0,
            _ => {}
        }
        Action::Redraw
    }

    fn query(&self) -> Query {
        Query {
            endpoint_sort: self.view.endpoint_sort,
            client_sort: self.view.client_sort,
        }
    }
}

/// `--token`/`APITAP_API_TOKEN`, else the agent's generated token file in `data_dir`.
pub fn resolve_token(flag: Option<&str>, data_dir: &Path) -> Result<String> {
    if let Some(t) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(t.to_string());
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => Err(usage(format!("API token file {} is empty", path.display()))),
        Err(e) => Err(usage(format!(
            "no API token: pass --token, set APITAP_API_TOKEN, or give --data-dir of the agent \
             ({}: {e})",
            path.display()
        ))),
    }
}

pub fn main(args: TopArgs) -> Result<ExitCode> {
    let url = args.url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(format!(
            "--url must be an http:// or https:// URL, got {url:?}"
        )));
    }
    if !(1..=60).contains(&args.interval) {
        return Err(usage(format!(
            "--interval must be 1 to 60 seconds, got {}",
            args.interval
        )));
    }
    let token = resolve_token(args.token.as_deref(), &args.data_dir)?;
    let every = Duration::from_secs(args.interval);
    let client = Client::new(&url, &token, every.max(Duration::from_secs(2)))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("apitap-top")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (query_tx, query_rx) = watch::channel(Query::default());
    let (result_tx, result_rx) = mpsc::channel(2);
    rt.spawn(client::run(client, every, query_rx, result_tx));

    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    let state = State {
        url,
        ..Default::default()
    };
    let outcome = run(&mut terminal, state, &query_tx, result_rx);
    ratatui::restore();
    rt.shutdown_timeout(Duration::from_millis(200));
    outcome.map(|()| ExitCode::SUCCESS)
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    mut state: State,
    query: &watch::Sender<Query>,
    mut results: mpsc::Receiver<Result<Panes, client::FetchError>>,
) -> Result<()> {
    let mut dirty = true;
    loop {
        while let Ok(round) = results.try_recv() {
            match round {
                Ok(p) => {
                    state.panes = Some(p);
                    state.error = None;
                }
                Err(e) => state.error = Some(e.to_string()),
            }
            dirty = true;
        }
        if dirty {
            terminal
                .draw(|f| view::draw(f, &state))
                .context("cannot draw")?;
            dirty = false;
        }
        if !event::poll(Duration::from_millis(100)).context("cannot read the terminal")? {
            continue;
        }
        match event::read().context("cannot read the terminal")? {
            Event::Key(key) if key.kind == KeyEventKind::Press => match state.on_key(key) {
                Action::Quit => return Ok(()),
                Action::Fetch => {
                    let q = state.query();
                    query.send_modify(|old| *old = q);
                    dirty = true;
                }
                Action::Redraw => dirty = true,
            },
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
