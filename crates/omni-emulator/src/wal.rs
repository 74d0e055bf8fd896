//! Durability: an append-only log with group commit, compacted into a snapshot at start.
//!
//! Every acknowledged write must survive `kill -9`. Records are appended in the order the store
//! applies them; a background thread writes whatever has queued up, calls `fdatasync` once for the
//! whole batch, and then publishes the highest durable sequence number. Writers wait for their
//! sequence number before they answer the client. Each record is framed as
//! `len: u32 LE | crc32: u32 LE | payload`, so a torn tail after a crash is detected and cut off.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use prost::Message;

use crate::model::{Phase, Res, Time};

/// Persisted form of one resource.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRes {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    typ: String,
    #[prost(string, tag = "3")]
    id: String,
    #[prost(uint64, tag = "4")]
    version: u64,
    #[prost(string, tag = "5")]
    owner: String,
    #[prost(bool, tag = "6")]
    tearing_down: bool,
    #[prost(int64, tag = "7")]
    created_secs: i64,
    #[prost(int32, tag = "8")]
    created_nanos: i32,
    #[prost(int64, tag = "9")]
    updated_secs: i64,
    #[prost(int32, tag = "10")]
    updated_nanos: i32,
    #[prost(string, repeated, tag = "11")]
    finalizers: Vec<String>,
    #[prost(btree_map = "string, string", tag = "12")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "13")]
    annotations: BTreeMap<String, String>,
    #[prost(bytes = "vec", tag = "14")]
    spec: Vec<u8>,
}

/// One log record: either a full resource state (put) or a deletion.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    #[prost(message, optional, tag = "1")]
    put: Option<StoredRes>,
    #[prost(string, tag = "2")]
    del_namespace: String,
    #[prost(string, tag = "3")]
    del_typ: String,
    #[prost(string, tag = "4")]
    del_id: String,
}

impl Record {
    /// A record storing the full state of `r`.
    pub fn put(r: &Res) -> Record {
        Record {
            put: Some(StoredRes {
                namespace: r.namespace.clone(),
                typ: r.typ.clone(),
                id: r.id.clone(),
                version: r.version,
                owner: r.owner.clone(),
                tearing_down: r.phase == Phase::TearingDown,
                created_secs: r.created.secs,
                created_nanos: r.created.nanos,
                updated_secs: r.updated.secs,
                updated_nanos: r.updated.nanos,
                finalizers: r.finalizers.clone(),
                labels: r.labels.clone(),
                annotations: r.annotations.clone(),
                spec: r.spec.clone(),
            }),
            ..Default::default()
        }
    }

    /// A record deleting a resource.
    pub fn delete(ns: &str, typ: &str, id: &str) -> Record {
        Record {
            put: None,
            del_namespace: ns.to_string(),
            del_typ: typ.to_string(),
            del_id: id.to_string(),
        }
    }
}

impl From<StoredRes> for Res {
    fn from(s: StoredRes) -> Res {
        Res {
            namespace: s.namespace,
            typ: s.typ,
            id: s.id,
            version: s.version,
            owner: s.owner,
            phase: if s.tearing_down {
                Phase::TearingDown
            } else {
                Phase::Running
            },
            created: Time {
                secs: s.created_secs,
                nanos: s.created_nanos,
            },
            updated: Time {
                secs: s.updated_secs,
                nanos: s.updated_nanos,
            },
            finalizers: s.finalizers,
            labels: s.labels,
            annotations: s.annotations,
            spec: s.spec,
            yaml: Default::default(),
        }
    }
}

/// Key of a stored resource: (namespace, type, id).
pub type Key = (String, String, String);

fn frame(buf: &mut Vec<u8>, rec: &Record) {
    let payload = rec.encode_to_vec();
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    buf.extend_from_slice(&payload);
}

/// Reads framed records until the end or the first damaged frame. Returns the records and the
/// byte length of the valid prefix.
fn read_frames(path: &Path) -> io::Result<(Vec<Record>, u64)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut r = BufReader::new(file);
    let mut out = Vec::new();
    let mut good = 0u64;
    loop {
        let mut hdr = [0u8; 8];
        if r.read_exact(&mut hdr).is_err() {
            break;
        }
        let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        if len > 64 << 20 {
            break;
        }
        let mut payload = vec![0u8; len];
        if r.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        match Record::decode(payload.as_slice()) {
            Ok(rec) => out.push(rec),
            Err(_) => break,
        }
        good += 8 + len as u64;
    }
    Ok((out, good))
}

fn apply(state: &mut BTreeMap<Key, Res>, rec: Record) {
    match rec.put {
        Some(p) => {
            let r: Res = p.into();
            state.insert((r.namespace.clone(), r.typ.clone(), r.id.clone()), r);
        }
        None => {
            state.remove(&(rec.del_namespace, rec.del_typ, rec.del_id));
        }
    }
}

fn sync_dir(dir: &Path) {
    // Making a rename durable needs an fsync of the directory on Linux; failure is not fatal.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Loads the snapshot and log of `dir`, writes a fresh compacted snapshot, empties the log and
/// returns the state plus a writer appending to the new log.
pub fn open(dir: &Path) -> io::Result<(BTreeMap<Key, Res>, Wal)> {
    fs::create_dir_all(dir)?;
    let snap = dir.join("state.snap");
    let log = dir.join("state.log");
    let mut state = BTreeMap::new();
    let (snap_recs, _) = read_frames(&snap)?;
    for r in snap_recs {
        apply(&mut state, r);
    }
    // Replaying the log over the snapshot is idempotent (records carry full states), so a crash
    // between the snapshot rename and the log truncation below loses nothing.
    let (log_recs, _) = read_frames(&log)?;
    for r in log_recs {
        apply(&mut state, r);
    }
    let tmp = dir.join("state.snap.tmp");
    {
        let mut f = io::BufWriter::new(File::create(&tmp)?);
        let mut buf = Vec::new();
        for r in state.values() {
            buf.clear();
            frame(&mut buf, &Record::put(r));
            f.write_all(&buf)?;
        }
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    fs::rename(&tmp, &snap)?;
    sync_dir(dir);
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&log)?;
    f.sync_all()?;
    sync_dir(dir);
    Ok((state, Wal::start(f, log)))
}

/// Handle to the log writer thread.
pub struct Wal {
    tx: mpsc::Sender<(u64, Vec<u8>)>,
    durable: tokio::sync::watch::Receiver<u64>,
    next_seq: u64,
}

impl Wal {
    fn start(mut file: File, path: PathBuf) -> Wal {
        let (tx, rx) = mpsc::channel::<(u64, Vec<u8>)>();
        let (dtx, drx) = tokio::sync::watch::channel(0u64);
        std::thread::Builder::new()
            .name("omni-emulator-wal".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(1 << 16);
                while let Ok((mut seq, bytes)) = rx.recv() {
                    buf.clear();
                    buf.extend_from_slice(&bytes);
                    // Group commit: take everything that queued up while the last fsync ran.
                    while let Ok((s, b)) = rx.try_recv() {
                        seq = s;
                        buf.extend_from_slice(&b);
                    }
                    let res = file.write_all(&buf).and_then(|_| file.sync_data());
                    if let Err(e) = res {
                        // Without a durable log no write may be acknowledged any more.
                        tracing::error!(path = %path.display(), error = %e, "write-ahead log failed");
                        return;
                    }
                    let _ = dtx.send(seq);
                }
            })
            .ok();
        Wal {
            tx,
            durable: drx,
            next_seq: 0,
        }
    }

    /// Queues a record; returns the sequence number to wait for. Call in apply order.
    pub fn append(&mut self, rec: &Record) -> u64 {
        self.next_seq += 1;
        let mut buf = Vec::new();
        frame(&mut buf, rec);
        let _ = self.tx.send((self.next_seq, buf));
        self.next_seq
    }

    /// A receiver of the durable sequence number, for waiting without holding the store lock.
    pub fn durable(&self) -> tokio::sync::watch::Receiver<u64> {
        self.durable.clone()
    }
}

/// Waits until `seq` is on disk. Errors if the log writer died.
pub async fn wait_durable(mut rx: tokio::sync::watch::Receiver<u64>, seq: u64) -> io::Result<()> {
    rx.wait_for(|d| *d >= seq)
        .await
        .map(|_| ())
        .map_err(|_| io::Error::other("write-ahead log writer stopped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn log_replays_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (state, mut wal) = open(dir.path()).unwrap();
            assert!(state.is_empty());
            let mut r = Res::new("default", "T", "a", b"x".to_vec());
            r.version = 1;
            wal.append(&Record::put(&r));
            r.version = 2;
            wal.append(&Record::put(&r));
            let b = Res::new("default", "T", "b", vec![]);
            wal.append(&Record::put(&b));
            let s = wal.append(&Record::delete("default", "T", "b"));
            wait_durable(wal.durable(), s).await.unwrap();
        }
        // simulate a torn tail
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("state.log"))
            .unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (state, _wal) = open(dir.path()).unwrap();
        assert_eq!(state.len(), 1);
        let a = &state[&("default".into(), "T".into(), "a".into())];
        assert_eq!(a.version, 2);
        assert_eq!(a.spec, b"x");
        let (state, _wal) = open(dir.path()).unwrap();
        assert_eq!(state.len(), 1);
    }
}
