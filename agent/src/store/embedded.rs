//! The embedded usage store: one redb file in the data directory, with tables for the daily
//! endpoint, daily client and hourly endpoint counters, pruned to their retention on flush.

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::key::{Family, UsageKind};
use super::pending::Batch;
use super::{StoreError, Usage};

const DAILY: TableDefinition<(&str, &str), u64> = TableDefinition::new("daily_endpoint");
const DAILY_CLIENT: TableDefinition<(&str, &str), u64> = TableDefinition::new("daily_client");
const HOURLY: TableDefinition<(&str, u8, &str), u64> = TableDefinition::new("hourly_endpoint");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const ROUTES_KEY: &str = "routes";

/// File name of the store inside the data directory.
pub const FILE_NAME: &str = "usage.redb";

#[derive(Clone)]
pub struct Embedded {
    db: Arc<Database>,
}

/// Adds `n` to the counter at `key` of `table`.
fn add<K: redb::Key + 'static>(
    table: &mut redb::Table<'_, K, u64>,
    key: K::SelfType<'_>,
    n: u64,
) -> Result<(), StoreError>
where
    for<'a> K::SelfType<'a>: Clone,
{
    let old = table
        .get(key.clone())
        .map_err(db_err)?
        .map_or(0, |v| v.value());
    table.insert(key, old.saturating_add(n)).map_err(db_err)?;
    Ok(())
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Embedded(e.into().to_string())
}

impl Embedded {
    /// Opens (creating the directory and file when missing) `<dir>/usage.redb`.
    pub fn open(dir: &Path) -> Result<Embedded, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::DataDir {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| StoreError::Open {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let txn = db.begin_write().map_err(db_err)?;
        txn.open_table(DAILY).map_err(db_err)?;
        txn.open_table(DAILY_CLIENT).map_err(db_err)?;
        txn.open_table(HOURLY).map_err(db_err)?;
        txn.open_table(META).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(Embedded { db: Arc::new(db) })
    }

    /// Adds a batch in one transaction and prunes dates older than the cutoffs
    /// (`YYYY-MM-DD`, kept when `date >= cutoff`).
    pub fn write(
        &self,
        batch: &Batch,
        daily_cutoff: &str,
        hourly_cutoff: &str,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut daily = txn.open_table(DAILY).map_err(db_err)?;
            let mut clients = txn.open_table(DAILY_CLIENT).map_err(db_err)?;
            let mut hourly = txn.open_table(HOURLY).map_err(db_err)?;
            for (group, fields) in batch {
                let date = group.date();
                for (field, n) in fields {
                    let n = *n;
                    match group.family {
                        Family::Daily => add(&mut daily, (date.as_str(), &**field), n)?,
                        Family::DailyClient => add(&mut clients, (date.as_str(), &**field), n)?,
                        Family::Hourly => {
                            add(&mut hourly, (date.as_str(), group.hour, &**field), n)?
                        }
                    }
                }
            }
            daily
                .retain(|(date, _), _| date >= daily_cutoff)
                .map_err(db_err)?;
            clients
                .retain(|(date, _), _| date >= daily_cutoff)
                .map_err(db_err)?;
            hourly
                .retain(|(date, _, _), _| date >= hourly_cutoff)
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Daily counts of `kind` for `dates` (missing dates are absent from the result).
    pub fn usage(&self, kind: UsageKind, dates: &[String]) -> Result<Usage, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = match kind {
            UsageKind::Endpoints => txn.open_table(DAILY),
            UsageKind::Clients => txn.open_table(DAILY_CLIENT),
        }
        .map_err(db_err)?;
        let mut out: Usage = BTreeMap::new();
        for date in dates {
            let range = table.range((date.as_str(), "")..).map_err(db_err)?;
            for entry in range {
                let (k, v) = entry.map_err(db_err)?;
                let (d, field) = k.value();
                if d != date {
                    break;
                }
                out.entry(date.clone())
                    .or_default()
                    .insert(field.to_string(), v.value());
            }
        }
        Ok(out)
    }

    /// Hourly counts of one date, by hour then field.
    #[cfg(test)]
    pub fn hourly(&self, date: &str) -> Result<BTreeMap<u8, BTreeMap<String, u64>>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(HOURLY).map_err(db_err)?;
        let mut out: BTreeMap<u8, BTreeMap<String, u64>> = BTreeMap::new();
        for entry in table.range((date, 0u8, "")..).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let (d, hour, field) = k.value();
            if d != date {
                break;
            }
            out.entry(hour)
                .or_default()
                .insert(field.to_string(), v.value());
        }
        Ok(out)
    }

    /// A read transaction, as the liveness probe of /health.
    pub fn ping(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        txn.open_table(META).map_err(db_err)?;
        Ok(())
    }

    pub fn save_routes(&self, json: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(META)
            .map_err(db_err)?
            .insert(ROUTES_KEY, json)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    pub fn load_routes(&self) -> Result<Option<String>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(META).map_err(db_err)?;
        Ok(table
            .get(ROUTES_KEY)
            .map_err(db_err)?
            .map(|v| v.value().to_string()))
    }
}
