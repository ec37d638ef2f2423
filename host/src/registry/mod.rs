//! Registries: where provider, router and configurator URLs come from. Each subscription
//! yields full snapshots (never deltas) into the one directory that owns them.
