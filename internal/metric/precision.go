package metric

import (
	"math"
	"strconv"
)

// Precision of the agent's own metric families: the decimal places their
// values carry as collected (docs/metrics.md, "Precision"). An average of
// such values (a history bucket, a rollup, an export) is rounded to the
// same places, so averaging never shows float noise such as
// 9.548499999999995 and never claims more precision than was measured.
const (
	famPercent = 2 // percentages, rounded to 2 decimals at collection
	famLoad    = 2 // load averages, 2 decimals in /proc/loadavg
	famBytes   = 0 // byte gauges and byte rates, whole bytes
	famCelsius = 3 // temperatures, millidegree sources
	famWatts   = 2 // power, rounded to 2 decimals at collection
	famEnergy  = 0 // battery energy and charge, whole joules and coulombs
	famSeconds = 3 // durations and times, millisecond precision
	famCount   = 2 // counts, states and flags: whole values, averages keep 2 decimals
)

// AverageDigits is how many significant digits an average of a metric the
// agent does not define keeps (custom, pushed, remote-written): enough for
// every real digit of a gauge averaged over an hour, few enough to drop the
// float noise of sum/count.
const AverageDigits = 12

// families maps each of the agent's own metrics to its decimal places.
var families = map[string]int{
	"battery_capacity_percent": famPercent, "container_cpu_usage_percent": famPercent,
	"cpu_usage_percent": famPercent, "disk_io_time_percent": famPercent,
	"filesystem_usage_percent": famPercent, "gpu_memory_utilization_percent": famPercent,
	"gpu_utilization_percent": famPercent, "memory_usage_percent": famPercent,
	"nvme_available_spare_percent": famPercent, "nvme_wear_percent": famPercent,
	"pressure_full_avg10_percent": famPercent, "pressure_full_avg300_percent": famPercent,
	"pressure_full_avg60_percent": famPercent, "pressure_some_avg10_percent": famPercent,
	"pressure_some_avg300_percent": famPercent, "pressure_some_avg60_percent": famPercent,
	"systemd_unit_cpu_usage_percent": famPercent,
	"load1":                          famLoad, "load15": famLoad, "load5": famLoad,
	"container_io_read_bytes_per_second": famBytes, "container_io_write_bytes_per_second": famBytes,
	"container_memory_usage_bytes": famBytes, "container_network_receive_bytes_per_second": famBytes,
	"container_network_transmit_bytes_per_second": famBytes, "directory_size_bytes": famBytes,
	"disk_read_bytes_per_second": famBytes, "disk_write_bytes_per_second": famBytes,
	"filesystem_size_bytes": famBytes, "filesystem_used_bytes": famBytes,
	"gpu_memory_total_bytes": famBytes, "gpu_memory_used_bytes": famBytes,
	"gpu_process_memory_bytes": famBytes, "memory_available_bytes": famBytes,
	"memory_total_bytes": famBytes, "memory_used_bytes": famBytes,
	"network_receive_bytes_per_second": famBytes, "network_transmit_bytes_per_second": famBytes,
	"swap_total_bytes": famBytes, "swap_used_bytes": famBytes,
	"systemd_unit_io_read_bytes_per_second":  famBytes,
	"systemd_unit_io_write_bytes_per_second": famBytes, "systemd_unit_memory_bytes": famBytes,
	"gpu_temperature_celsius": famCelsius, "hwmon_temperature_celsius": famCelsius,
	"smart_temperature_celsius": famCelsius, "thermal_zone_temperature_celsius": famCelsius,
	"battery_power_watts": famWatts, "gpu_power_limit_watts": famWatts, "gpu_power_watts": famWatts,
	"battery_charge_coulombs": famEnergy, "battery_charge_full_coulombs": famEnergy,
	"battery_energy_full_joules": famEnergy, "battery_energy_joules": famEnergy,
	"directory_scan_seconds": famSeconds, "pressure_full_seconds_total": famSeconds,
	"pressure_some_seconds_total": famSeconds, "smart_power_on_seconds": famSeconds,
	"textfile_mtime_seconds": famSeconds, "uptime_seconds": famSeconds,
	"battery_charging": famCount, "container_restarts_total": famCount, "directory_files": famCount,
	"directory_scan_complete": famCount, "fan_speed_rpm": famCount, "gpu_frequency_mhz": famCount,
	"nvme_critical_warning": famCount, "nvme_media_errors_total": famCount,
	"processes_blocked": famCount, "processes_running": famCount, "processes_state": famCount,
	"processes_total": famCount, "smart_health_passed": famCount,
	"smart_offline_uncorrectable_sectors": famCount, "smart_pending_sectors": famCount,
	"smart_reallocated_sectors": famCount, "systemd_unit_active": famCount,
	"systemd_unit_failed": famCount, "systemd_unit_info": famCount,
	"systemd_unit_restarts_total": famCount, "systemd_units_active": famCount,
	"systemd_units_failed": famCount, "textfile_scrape_error": famCount,
}

// Decimals returns the decimal places of a metric the agent defines, and
// false for every other name.
func Decimals(name string) (int, bool) {
	d, ok := families[name]
	return d, ok
}

// RoundAverage rounds an average of name's values: to the decimal places of
// the metric's family when the agent defines it, else to AverageDigits
// significant digits. NaN and ±Inf are returned unchanged.
func RoundAverage(name string, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	if d, ok := families[name]; ok {
		p := math.Pow10(d)
		if math.Abs(v)*p >= 1<<52 {
			return v // no fraction left at this precision
		}
		// Drop sum/count's binary noise first, so that a decimal half
		// (1.0275 stored as 1.02749999…) rounds away from zero.
		return math.Round(RoundDigits(v, 15)*p) / p
	}
	return RoundDigits(v, AverageDigits)
}

// RoundDigits rounds v to n significant digits (NaN and ±Inf unchanged).
func RoundDigits(v float64, n int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v
	}
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', n, 64), 64)
	if err != nil {
		return v
	}
	return r
}
