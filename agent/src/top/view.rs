//! Drawing `apitap top`: a header, the services (with a per-second sparkline), then the four
//! panes (endpoints, clients, alerts, capture) and a line of keys.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table};

use super::State;
use super::model::{Panes, service_key};

pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn pct(r: f64) -> String {
    if r <= 0.0 {
        return "0%".into();
    }
    let p = r * 100.0;
    if p < 10.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

pub fn ms(v: f64) -> String {
    if !v.is_finite() || v <= 0.0 {
        "-".into()
    } else if v < 1.0 {
        format!("{:.0}µs", v * 1000.0)
    } else if v < 1000.0 {
        format!("{v:.1}ms")
    } else {
        format!("{:.2}s", v / 1000.0)
    }
}

/// A right-aligned cell (numbers).
fn num(text: String) -> Cell<'static> {
    Cell::from(Text::from(text).alignment(Alignment::Right))
}

/// A right-aligned bold header cell.
fn num_head(text: &'static str) -> Cell<'static> {
    Cell::from(Text::from(text).alignment(Alignment::Right)).add_modifier(Modifier::BOLD)
}

fn pane(title: String) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, Style::new().bold()))
}

pub fn draw(f: &mut Frame<'_>, s: &State) {
    let services = s.panes.as_ref().map_or(0, |p| s.view.services(p).len());
    let [head, svc, endpoints, middle, capture, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length((services.clamp(1, 4) as u16) + 2),
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    header(f, head, s);
    let Some(p) = &s.panes else {
        f.render_widget(
            Paragraph::new("waiting for the agent…").block(pane("Services".into())),
            svc,
        );
        footer(f, keys, s);
        return;
    };
    services_pane(f, svc, s, p);
    endpoints_pane(f, endpoints, s, p);
    let [clients, alerts] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    clients_pane(f, clients, s, p);
    alerts_pane(f, alerts, p);
    capture_pane(f, capture, p);
    footer(f, keys, s);
}

fn header(f: &mut Frame<'_>, area: Rect, s: &State) {
    let mut spans = vec![
        Span::styled("apitap top", Style::new().bold()),
        Span::raw(format!("  {}  ", s.url)),
    ];
    match &s.error {
        Some(e) => spans.push(Span::styled(e.clone(), Style::new().fg(Color::Red).bold())),
        None => match &s.panes {
            Some(p) => spans.push(Span::styled(
                format!("live · {}", p.endpoints.timestamp),
                Style::new().fg(Color::Green),
            )),
            None => spans.push(Span::raw("connecting…")),
        },
    }
    f.render_widget(Line::from(spans), area);
}

fn services_pane(f: &mut Frame<'_>, area: Rect, s: &State, p: &Panes) {
    let title = match &s.view.service {
        Some(k) => format!("Service {k} (←/→ all services)"),
        None => "Services (←/→ one service)".into(),
    };
    let block = pane(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let rows = s.view.services(p);
    if rows.is_empty() {
        f.render_widget(Paragraph::new("no HTTP traffic seen yet"), inner);
        return;
    }
    for (i, row) in rows.iter().take(inner.height as usize).enumerate() {
        let line = Rect {
            y: inner.y + i as u16,
            height: 1,
            ..inner
        };
        let [text, spark] =
            Layout::horizontal([Constraint::Length(64), Constraint::Min(0)]).areas(line);
        let series = p.series_of(&row.namespace, &row.service);
        let rate = series.map_or(0.0, |x| x.recent_rate(10));
        let name = service_key(&row.namespace, &row.service);
        f.render_widget(
            Line::from(vec![
                Span::styled(format!("{name:<22.22}"), Style::new().bold()),
                Span::raw(format!(
                    " {rate:>8.1} req/s  err {:>7}  p95 {:>8}",
                    pct(row.error_rate_5m),
                    ms(row.p95_5m_ms)
                )),
            ]),
            text,
        );
        if let Some(series) = series {
            // The newest complete seconds that fit, one column each.
            let complete = series.requests.len().saturating_sub(1);
            let from = complete.saturating_sub(spark.width as usize);
            f.render_widget(
                Sparkline::default()
                    .data(&series.requests[from..complete])
                    .style(Style::new().fg(Color::Cyan)),
                spark,
            );
        }
    }
}

fn endpoints_pane(f: &mut Frame<'_>, area: Rect, s: &State, p: &Panes) {
    let rows = s.view.endpoints(p);
    let filter = if s.view.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter \"{}\"", s.view.filter)
    };
    let title = format!(
        "Endpoints · {} shown · sorted by {} (s){filter}",
        rows.len(),
        s.view.endpoint_sort.label()
    );
    let mut header: Vec<Cell<'_>> = ["SERVICE", "METHOD", "ENDPOINT"]
        .map(|h| Cell::from(h).add_modifier(Modifier::BOLD))
        .to_vec();
    header.extend(["REQUESTS", "ERRORS", "P50", "P95", "P99"].map(num_head));
    let header = Row::new(header);
    let body = rows.iter().skip(s.scroll).map(|e| {
        let err_style = if e.error_rate >= 0.1 {
            Style::new().fg(Color::Red).bold()
        } else if e.error_rate >= 0.05 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(service_key(&e.namespace, &e.service)),
            Cell::from(e.method.clone()),
            Cell::from(e.endpoint.clone()),
            num(count(e.count)),
            num(pct(e.error_rate)).style(err_style),
            num(ms(e.p50_latency_ms)),
            num(ms(e.p95_latency_ms)),
            num(ms(e.p99_latency_ms)),
        ])
    });
    let widths = [
        Constraint::Length(18),
        Constraint::Length(7),
        Constraint::Min(20),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    f.render_widget(
        Table::new(body, widths).header(header).block(pane(title)),
        area,
    );
}

fn clients_pane(f: &mut Frame<'_>, area: Rect, s: &State, p: &Panes) {
    let rows = s.view.clients(p);
    let title = format!("Clients · sorted by {} (c)", s.view.client_sort.label());
    let mut header = vec![Cell::from("CLIENT").add_modifier(Modifier::BOLD)];
    header.extend(["REQUESTS", "429", "401/403"].map(num_head));
    let header = Row::new(header);
    let warn = |n: u64| {
        if n > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        }
    };
    let body = rows.iter().map(|c| {
        Row::new(vec![
            Cell::from(c.client.clone()),
            num(count(c.count)),
            num(count(c.rate_limited)).style(warn(c.rate_limited)),
            num(count(c.auth_failures)).style(warn(c.auth_failures)),
        ])
    });
    let widths = [
        Constraint::Min(16),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(8),
    ];
    f.render_widget(
        Table::new(body, widths).header(header).block(pane(title)),
        area,
    );
}

fn alerts_pane(f: &mut Frame<'_>, area: Rect, p: &Panes) {
    let order = ["firing", "pending", "resolved"];
    let mut alerts: Vec<_> = p.alerts.alerts.iter().collect();
    alerts.sort_by_key(|a| order.iter().position(|o| *o == a.state).unwrap_or(3));
    let firing = alerts.iter().filter(|a| a.state == "firing").count();
    let lines: Vec<Line<'_>> = if alerts.is_empty() {
        vec![Line::from("none")]
    } else {
        alerts
            .iter()
            .map(|a| {
                let style = match (a.state.as_str(), a.severity.as_str()) {
                    ("firing", "critical") => Style::new().fg(Color::Red).bold(),
                    ("firing", _) => Style::new().fg(Color::Yellow).bold(),
                    ("pending", _) => Style::new().fg(Color::Yellow),
                    _ => Style::new().fg(Color::DarkGray),
                };
                Line::from(vec![
                    Span::styled(format!("{:<8} ", a.state), style),
                    Span::raw(format!("{} {}", a.name, a.summary)),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(pane(format!("Alerts · {firing} firing"))),
        area,
    );
}

fn capture_pane(f: &mut Frame<'_>, area: Rect, p: &Panes) {
    let c = &p.capture;
    let bad = |n: u64| {
        if n > 0 {
            Style::new().fg(Color::Red).bold()
        } else {
            Style::new()
        }
    };
    let ifaces = if c.interfaces.is_empty() {
        "none".to_string()
    } else {
        c.interfaces.join(",")
    };
    let line = Line::from(vec![
        Span::raw(format!(
            "interfaces {ifaces} ({} programs) · ",
            c.programs_attached
        )),
        Span::raw("lost "),
        Span::styled(count(c.events_lost), bad(c.events_lost)),
        Span::raw(" · dropped "),
        Span::styled(count(c.events_dropped), bad(c.events_dropped)),
        Span::raw(" · gaps "),
        Span::styled(count(c.reassembly_gaps), bad(c.reassembly_gaps)),
        Span::raw(" · parse errors "),
        Span::styled(count(c.parse_errors_total), bad(c.parse_errors_total)),
        Span::raw(format!(" · flows {}", count(c.flows_tracked))),
    ]);
    f.render_widget(Paragraph::new(line).block(pane("Capture".into())), area);
}

fn footer(f: &mut Frame<'_>, area: Rect, s: &State) {
    let line = match &s.editing {
        Some(text) => Line::from(vec![
            Span::styled("filter: ", Style::new().bold()),
            Span::raw(text.clone()),
            Span::styled("█", Style::new().fg(Color::Gray)),
            Span::raw("   Enter apply · Esc cancel"),
        ]),
        None => Line::from(
            "q quit · s sort endpoints · c sort clients · / filter · ←/→ service · ↑/↓ scroll · r refresh",
        )
        .style(Style::new().fg(Color::DarkGray)),
    };
    f.render_widget(line, area);
}
