//! Where attachment bytes live: a [`BlobStore`] (the file system under `attachments_dir` by
//! default; an S3-compatible store would implement the same trait). Blobs are written whole
//! before the message that names them is committed, and served as streams, so neither an upload
//! nor a download holds a file in memory.

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use tokio::io::AsyncWriteExt;

/// A blob's bytes as they are read.
pub type BlobStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `data` under `key` (replacing any), whole or not at all.
    async fn put(&self, key: &str, data: &[u8]) -> io::Result<()>;
    /// Moves a file already written (a streamed upload) in under `key`.
    async fn put_file(&self, key: &str, file: PathBuf) -> io::Result<()>;
    /// The blob and its length; `None` when there is none.
    async fn get(&self, key: &str) -> io::Result<Option<(BlobStream, u64)>>;
    async fn delete(&self, key: &str) -> io::Result<()>;
    /// Deletes every blob under `prefix/` (a deleted channel's).
    async fn delete_prefix(&self, prefix: &str) -> io::Result<()>;
    /// A place for an upload in progress, to [`BlobStore::put_file`] once complete.
    fn scratch(&self) -> PathBuf;
}

/// Blobs as files: `<root>/<key>`; keys are ours (ids and fixed names), never a client's.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> FsBlobStore {
        FsBlobStore { root: root.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let tmp = self.scratch();
        tokio::fs::create_dir_all(self.root.join("tmp")).await?;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(data).await?;
        f.sync_all().await?;
        self.put_file(key, tmp).await
    }

    async fn put_file(&self, key: &str, file: PathBuf) -> io::Result<()> {
        let dest = self.path(key);
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(&file, &dest).await
    }

    async fn get(&self, key: &str) -> io::Result<Option<(BlobStream, u64)>> {
        let f = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = f.metadata().await?.len();
        Ok(Some((Box::pin(tokio_util::io::ReaderStream::new(f)), len)))
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> io::Result<()> {
        if prefix.is_empty() || prefix.contains(['/', '.']) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a prefix is one plain path segment"));
        }
        match tokio::fs::remove_dir_all(self.path(prefix)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn scratch(&self) -> PathBuf {
        self.root.join("tmp").join(crate::auth::new_token())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn blobs_round_trip_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path());
        store.put("1/a.bin", b"hello").await.unwrap();
        let (mut s, len) = store.get("1/a.bin").await.unwrap().unwrap();
        assert_eq!(len, 5);
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"hello"));
        store.delete("1/a.bin").await.unwrap();
        store.put("2/b.bin", b"x").await.unwrap();
        store.delete_prefix("2").await.unwrap();
        assert!(store.get("2/b.bin").await.unwrap().is_none(), "a channel's blobs go with it");
        store.delete_prefix("2").await.unwrap();
        store.delete("1/a.bin").await.unwrap();
        store.put("2/b.bin", b"x").await.unwrap();
        store.delete_prefix("2").await.unwrap();
        assert!(store.get("2/b.bin").await.unwrap().is_none(), "a channel's blobs go with it");
        store.delete_prefix("2").await.unwrap();
        assert!(store.get("1/a.bin").await.unwrap().is_none());
    }
}
