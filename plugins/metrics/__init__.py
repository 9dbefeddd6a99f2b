"""Built-in metric plugins (entry-point group gantools.metrics)."""
