//! Configuration, by audience: per-call [`Options`] (`options.rs`, a leaf for callers), the
//! [`CacheBuilder`] with its defaults (`builder.rs`), the checks of `build()`
//! (`validate.rs`), the settings a cache runs with (`settings.rs`) and the environment
//! (`env.rs`).

use crate::clock::{Clock, RandomSource, SystemClock, ThreadRandom};
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod builder;
mod deployments;
mod env;
mod options;
mod settings;
mod validate;

pub(crate) use builder::Undefined;
pub use builder::{CacheBuilder, parse_duration};
pub use options::{EarlyRefresh, LockOptions, Options, Ttl};
pub(crate) use options::{Tags, push_unique};
pub(crate) use settings::{BackendChoice, Config};

pub(crate) use crate::clock::MAX_DURATION;
