//! The manual API's reads and writes through the engine: a read checks an entry as a
//! cached call does (tags, base keys, kept invalidations, freshness) and a write-through
//! stores as a fill does, with the tag versions of [`Cache::resolve_versions`], but
//! unconditionally (a fence for fills that began before it).

use super::*;

impl Cache {
    pub(crate) async fn get_timed<T: DeserializeOwned>(
        &self,
        key: &str,
        name: &Cow<'static, str>,
        started: Instant,
    ) -> Result<Option<T>> {
        let full_key = self.full_key(key);
        let name = name.clone();
        self.ensure_pending_worker();
        if self.pending().blocks::<&str>(&full_key, &[], "") {
            self.recorder().record(Event::Miss, &name);
            return Ok(None);
        }
        let found = self.store().lookup(&full_key, self.base_keys()).await?;
        let Some(entry) = found.entry else {
            self.recorder().record(Event::Miss, &name);
            return Ok(None);
        };
        match self
            .check_stored::<T>(&entry, &[], &found.versions, None)
            .await?
        {
            Check::Valid(v, meta) if self.is_fresh(meta) => {
                self.recorder().record_hit(&name, started);
                Ok(Some(v))
            }
            Check::Valid(..) | Check::Invalid => {
                self.recorder().record(Event::Miss, &name);
                Ok(None)
            }
            Check::Undecodable(why) => {
                self.decode_failure(&name, &full_key, &why);
                self.recorder().record(Event::Miss, &name);
                Ok(None)
            }
        }
    }

    pub(crate) async fn exists_raw(&self, key: &str) -> Result<bool> {
        let full_key = self.full_key(key);
        self.ensure_pending_worker();
        if self.pending().blocks::<&str>(&full_key, &[], "") {
            return Ok(false);
        }
        let found = self.store().lookup(&full_key, self.base_keys()).await?;
        let Some(entry) = found.entry else {
            return Ok(false);
        };
        Ok(matches!(
            self.check_stored::<serde::de::IgnoredAny>(&entry, &[], &found.versions, None)
                .await?,
            Check::Valid(_, meta) if self.is_fresh(meta)
        ))
    }

    pub(crate) fn is_fresh(&self, meta: Meta) -> bool {
        meta.fresh_until_ms == 0 || self.config().clock.now_ms() < meta.fresh_until_ms
    }

    pub(crate) async fn write_through_raw(
        &self,
        full_key: &str,
        raw: &serde_json::value::RawValue,
        opts: &Options,
        ttl: Option<&Ttl>,
        keep_decoded: bool,
    ) -> Result<()> {
        if !self.store().stores() {
            return Ok(());
        }
        let tag_keys = self.call_tag_keys(opts);
        let ttl = self.ttl_for(ttl.unwrap_or(&opts.ttl), &opts.name);
        let versions = self
            .resolve_versions(&opts.tags, &tag_keys, Vec::new(), ttl)
            .await?;
        let Some(versions) = versions else {
            return Err(Error::TagVersionLost);
        };
        let entry = ToStore {
            full_key,
            raw,
            versions: &versions,
            ttl,
            compute_us: 0,
            keep_decoded,
        };
        self.store_raw(entry, opts, None).await.map(|_| ())
    }
}
