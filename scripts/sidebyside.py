#!/usr/bin/env python3
"""Run several commands side by side (same window, same load) and report each one's
on-CPU time from /proc/PID/task/*/schedstat (nanoseconds, not clock ticks), RSS
(VmRSS, RssAnon, RssFile) sampled every second, and optional HTTP scrape each second.
  sidebyside.py SECONDS WARMUP 'label|scrapeURL|ENV=V ENV2=V2|cmd args' ...  (scrapeURL and env may be empty)"""
import json, os, shlex, signal, subprocess, sys, time, urllib.request

def cpu_ns(pid):
    t = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    t += int(f.read().split()[0])
            except (OSError, ValueError):
                pass
    except OSError:
        pass
    return t

def mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(line.split()[1])
    return out

secs, warm = float(sys.argv[1]), float(sys.argv[2])
jobs = []
for spec in sys.argv[3:]:
    label, scrape, env, cmd = spec.split("|", 3)
    e = dict(os.environ)
    for kv in env.split():
        k, v = kv.split("=", 1)
        e[k] = v
    p = subprocess.Popen(shlex.split(cmd), env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    jobs.append(dict(label=label, scrape=scrape, p=p, rss=[], anon=[], file=[], sb=[]))
try:
    time.sleep(warm)
    for j in jobs:
        if j["p"].poll() is not None:
            sys.exit("%s exited during warm-up" % j["label"])
        j["c0"] = cpu_ns(j["p"].pid)
    t0 = time.time()
    while time.time() - t0 < secs:
        for j in jobs:
            if j["scrape"]:
                try:
                    with urllib.request.urlopen(j["scrape"], timeout=5) as r:
                        j["sb"].append(len(r.read()))
                except OSError:
                    pass
            m = mem(j["p"].pid)
            j["rss"].append(m["VmRSS"]); j["anon"].append(m["RssAnon"]); j["file"].append(m["RssFile"])
        time.sleep(max(0, 1 - (time.time() - t0) % 1))
    el = time.time() - t0
    for j in jobs:
        c = cpu_ns(j["p"].pid) - j["c0"]
        avg = lambda a: round(sum(a) / len(a) / 1024, 1)
        o = dict(label=j["label"], seconds=round(el), cpu_percent=round(100.0 * c / 1e9 / el, 3),
                 cpu_ms_per_s=round(c / 1e6 / el, 3), rss_mb_avg=avg(j["rss"]), rss_mb_max=round(max(j["rss"]) / 1024, 1),
                 rss_anon_mb_avg=avg(j["anon"]), rss_file_mb_avg=avg(j["file"]))
        if j["sb"]:
            o["scrape_bytes_avg"] = int(sum(j["sb"]) / len(j["sb"]))
        print(json.dumps(o), flush=True)
finally:
    for j in jobs:
        try:
            os.killpg(j["p"].pid, signal.SIGTERM); j["p"].wait(10)
        except Exception:
            pass
