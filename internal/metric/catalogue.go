package metric

import (
	"slices"
	"strings"
)

// Family is one metric family of the catalogue (docs/metrics.md): what the
// Prometheus metadata API answers for it.
type Family struct {
	Name string
	// Type is Prometheus' metric type: "gauge", or "counter" for the
	// series that carry a counter's value (the *_total ones).
	Type string
	// Unit is the OpenMetrics unit, the name's unit suffix ("bytes",
	// "seconds", "celsius", "percent", …), or "" when the name has none.
	Unit string
	Help string
	// Decimals is the precision of the family's values (precision.go):
	// averages of them are rounded to it.
	Decimals int
}

// Catalogue is every metric family an agent sends (docs/metrics.md),
// sorted by name. TestCatalogueMatchesDocs keeps the two in step.
var Catalogue = sortFamilies([]Family{
	gauge("up", "1 when the agent's last scrape of the target (job, instance) succeeded, 0 when it failed."),
	gauge("scrape_duration_seconds", "Wall time of the agent's last scrape of the target: request, body and parsing."),
	gauge("scrape_samples_scraped", "Samples the target's last exposition held (0 on failure)."),
	gauge("scrape_samples_post_metric_relabeling", "Samples of the target's last scrape that were sent: those scraped minus the ones left out."),
	gauge("cpu_usage_percent", "Busy share of CPU time since the previous sample, 0-100 (cpu=\"total\" is the whole machine)."),
	gauge("load1", "1-minute load average (runnable and uninterruptible tasks)."),
	gauge("load5", "5-minute load average."),
	gauge("load15", "15-minute load average."),
	gauge("memory_total_bytes", "Total usable memory (MemTotal)."),
	gauge("memory_used_bytes", "Memory in use: MemTotal - MemAvailable."),
	gauge("memory_available_bytes", "Memory available to new work without swapping (MemAvailable)."),
	gauge("memory_usage_percent", "Used memory as a share of total, 0-100."),
	gauge("swap_total_bytes", "Total swap space; 0 without swap."),
	gauge("swap_used_bytes", "Swap in use: SwapTotal - SwapFree."),
	gauge("filesystem_size_bytes", "Size of the filesystem."),
	gauge("filesystem_used_bytes", "Blocks in use on the filesystem."),
	gauge("filesystem_usage_percent", "Used share of the filesystem as df's Use%, 0-100."),
	gauge("disk_read_bytes_per_second", "Bytes read from the disk per second over the last sample interval."),
	gauge("disk_write_bytes_per_second", "Bytes written to the disk per second over the last sample interval."),
	gauge("disk_io_time_percent", "Share of the interval the device had I/O in flight (iostat's %util), 0-100."),
	gauge("network_receive_bytes_per_second", "Bytes received per second over the last sample interval."),
	gauge("network_transmit_bytes_per_second", "Bytes transmitted per second over the last sample interval."),
	gauge("processes_total", "Processes in the agent's PID namespace."),
	gauge("processes_running", "Runnable threads."),
	gauge("processes_blocked", "Threads blocked on I/O (uninterruptible sleep)."),
	gauge("processes_state", "Processes in each state, from the top-process scan."),
	gauge("uptime_seconds", "Seconds since boot."),
	gauge("pressure_some_avg10_percent", "Share of time at least one task stalled on the resource, kernel average over 10 s (PSI)."),
	gauge("pressure_some_avg60_percent", "Share of time at least one task stalled on the resource, kernel average over 60 s (PSI)."),
	gauge("pressure_some_avg300_percent", "Share of time at least one task stalled on the resource, kernel average over 300 s (PSI)."),
	gauge("pressure_full_avg10_percent", "Share of time all non-idle tasks stalled at once, kernel average over 10 s (PSI)."),
	gauge("pressure_full_avg60_percent", "Share of time all non-idle tasks stalled at once, kernel average over 60 s (PSI)."),
	gauge("pressure_full_avg300_percent", "Share of time all non-idle tasks stalled at once, kernel average over 300 s (PSI)."),
	counter("pressure_some_seconds_total", "Cumulative time at least one task stalled on the resource since boot (PSI)."),
	counter("pressure_full_seconds_total", "Cumulative time all non-idle tasks stalled at once since boot (PSI)."),
	gauge("hwmon_temperature_celsius", "Temperature of a hwmon sensor."),
	gauge("fan_speed_rpm", "Fan speed in revolutions per minute."),
	gauge("thermal_zone_temperature_celsius", "Temperature of an ACPI or SoC thermal zone."),
	gauge("battery_capacity_percent", "Battery charge level, 0-100."),
	gauge("battery_charging", "1 while the battery is charging, else 0."),
	gauge("battery_energy_joules", "Energy stored in the battery."),
	gauge("battery_energy_full_joules", "Energy the battery holds when full."),
	gauge("battery_charge_coulombs", "Charge stored in the battery."),
	gauge("battery_charge_full_coulombs", "Charge the battery holds when full."),
	gauge("battery_power_watts", "Power drawn from or into the battery."),
	gauge("systemd_unit_active", "1 while the systemd unit is active or reloading, else 0."),
	gauge("systemd_unit_failed", "1 while the systemd unit is failed, else 0."),
	gauge("systemd_unit_info", "Always 1; the labels carry the unit's states."),
	counter("systemd_unit_restarts_total", "Automatic restarts of the unit since it was last started by hand."),
	gauge("systemd_units_failed", "Failed systemd units."),
	gauge("systemd_units_active", "Active systemd units."),
	gauge("systemd_unit_cpu_usage_percent", "CPU used by the unit's cgroup, percent of one core."),
	gauge("systemd_unit_memory_bytes", "Memory of the unit's cgroup, page cache included."),
	gauge("systemd_unit_io_read_bytes_per_second", "Bytes the unit's cgroup read per second (cgroup v2)."),
	gauge("systemd_unit_io_write_bytes_per_second", "Bytes the unit's cgroup wrote per second (cgroup v2)."),
	gauge("directory_size_bytes", "Allocated size of the directory tree, as du -sx."),
	gauge("directory_files", "Files, directories and links in the directory tree."),
	gauge("directory_scan_seconds", "Wall time of the last walk of the directory tree."),
	gauge("directory_scan_complete", "1 when the last walk covered the whole tree, else 0 (the size is a lower bound)."),
	gauge("container_cpu_usage_percent", "CPU used by the container, percent of one core (docker stats)."),
	gauge("container_memory_usage_bytes", "Memory used by the container (docker stats)."),
	gauge("container_io_read_bytes_per_second", "Bytes the container read per second."),
	gauge("container_io_write_bytes_per_second", "Bytes the container wrote per second."),
	gauge("container_network_receive_bytes_per_second", "Bytes the container received per second."),
	gauge("container_network_transmit_bytes_per_second", "Bytes the container transmitted per second."),
	counter("container_restarts_total", "Restarts of the container since the agent started."),
	gauge("smart_health_passed", "1 when the drive's SMART self-assessment passes, else 0."),
	gauge("smart_temperature_celsius", "Drive temperature reported by SMART."),
	gauge("smart_power_on_seconds", "Drive power-on time reported by SMART."),
	gauge("smart_reallocated_sectors", "Reallocated sectors (SATA/ATA)."),
	gauge("smart_pending_sectors", "Sectors pending reallocation (SATA/ATA)."),
	gauge("smart_offline_uncorrectable_sectors", "Offline uncorrectable sectors (SATA/ATA)."),
	gauge("nvme_wear_percent", "Vendor estimate of the NVMe drive's life used; may exceed 100."),
	gauge("nvme_available_spare_percent", "NVMe spare capacity left."),
	counter("nvme_media_errors_total", "NVMe media and data integrity errors."),
	gauge("nvme_critical_warning", "NVMe critical warning bit field; non-zero means trouble."),
	gauge("gpu_utilization_percent", "GPU busy share, 0-100."),
	gauge("gpu_memory_utilization_percent", "GPU memory controller busy share, 0-100 (NVIDIA)."),
	gauge("gpu_memory_used_bytes", "GPU memory in use."),
	gauge("gpu_memory_total_bytes", "GPU memory in total."),
	gauge("gpu_temperature_celsius", "GPU temperature."),
	gauge("gpu_power_watts", "GPU power draw."),
	gauge("gpu_frequency_mhz", "GPU clock frequency."),
	gauge("gpu_power_limit_watts", "GPU power limit."),
	gauge("gpu_process_memory_bytes", "GPU memory used by one compute process."),
	gauge("textfile_scrape_error", "1 when the textfile collector rejected the file, else 0."),
	gauge("textfile_mtime_seconds", "Modification time of the textfile, seconds since epoch."),
})

// catalogueByName indexes the catalogue.
var catalogueByName = func() map[string]Family {
	m := make(map[string]Family, len(Catalogue))
	for _, f := range Catalogue {
		m[f.Name] = f
	}
	return m
}()

// units are the OpenMetrics unit suffixes of the catalogue's names.
var units = []string{"bytes", "seconds", "celsius", "percent", "joules", "coulombs", "watts", "rpm", "mhz"}

func gauge(name, help string) Family   { return family(name, "gauge", help) }
func counter(name, help string) Family { return family(name, "counter", help) }

func family(name, typ, help string) Family {
	base := strings.TrimSuffix(name, "_total")
	for _, u := range units {
		if strings.HasSuffix(base, "_"+u) {
			return Family{Name: name, Type: typ, Unit: u, Help: help, Decimals: decimalsOf(name)}
		}
	}
	return Family{Name: name, Type: typ, Help: help, Decimals: decimalsOf(name)}
}

func sortFamilies(fs []Family) []Family {
	slices.SortFunc(fs, func(a, b Family) int { return strings.Compare(a.Name, b.Name) })
	return fs
}
