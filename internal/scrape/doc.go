// Package scrape owns the agent's scraping of Prometheus exporters on its
// host: each Target (an exposition URL with its job, interval, timeout and
// limits) is fetched on its own wall-clock ticks, parsed with Prometheus'
// own parser (model/textparse; text format 0.0.4 and OpenMetrics 1.0), given
// the job and instance labels Prometheus would add, and handed with
// per-target health series (up, scrape_duration_seconds, …) to the agent's
// acknowledged, replayed stream through an EmitFunc.
package scrape
