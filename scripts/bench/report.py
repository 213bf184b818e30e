"""Prints scripts/bench.sh's table from hyperfine's JSON exports and /usr/bin/time's output."""
import glob, json, re, statistics, sys

work, mib = sys.argv[1], sys.argv[2]

def times(movement, tool):
    out = []
    for path in sorted(glob.glob(f"{work}/{movement}-{tool}-*.json")):
        with open(path) as f:
            # One result per run: each run is its own command (its own destination).
            for result in json.load(f)["results"]:
                out += result["times"]
    return out

def rss_mib(tool):
    with open(f"{work}/rss-{tool}.txt") as f:
        kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read()).group(1))
    return kib / 1024

names = {
    "retag": "retag in one repository",
    "retag-new": "the same retag into a new state file",
    "mount": f"another repository, same registry (mount), {mib} MiB",
    "stream": f"another registry, {mib} MiB",
}
print("| movement | floe / skopeo (wall, median) | floe | skopeo | runs |")
print("|---|---|---|---|---|")
for m, name in names.items():
    f, s = times(m, "floe"), times(m, "skopeo")
    fm, sm = statistics.median(f), statistics.median(s)
    unit = (lambda t: f"{t * 1000:.0f} ms") if sm < 1 else (lambda t: f"{t:.2f} s")
    print(f"| {name} | {fm / sm:.2f} | {unit(fm)} | {unit(sm)} | {len(f)} + {len(s)} |")
fr, sr = rss_mib("floe"), rss_mib("skopeo")
print(f"| peak memory, another registry, {mib} MiB | {fr / sr:.2f} | {fr:.1f} MiB | {sr:.1f} MiB | 1 + 1 |")
