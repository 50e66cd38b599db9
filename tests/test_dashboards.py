"""The Grafana dashboards and Prometheus files in monitoring/: well-formed, and in step with the metrics.

A small validator for exactly the parts of the Grafana dashboard model the dashboards use (anything else is
refused, so nothing unvalidated creeps in), and a PromQL name check: every expression references only
metrics that :class:`fourteen.metrics.Metrics` defines (or Asterisk's ``asterisk_*`` and Prometheus'
``up``), and every metric the router exports appears on at least one panel. The helpers here are shared
with tests/integration/test_prometheus.py, which runs every expression against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from fourteen.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "monitoring"
DASHBOARD_DIR = MONITORING / "grafana" / "dashboards"
DATASOURCE_FILE = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER_FILE = MONITORING / "grafana" / "provisioning" / "dashboards" / "fourteen.yml"
DATASOURCE = {"type": "prometheus", "uid": "fourteen-prometheus"}
GRID_COLUMNS = 24
PANEL_TYPES = frozenset({"timeseries", "stat"})
DASHBOARD_KEYS = frozenset(
    {
        "uid",
        "title",
        "description",
        "tags",
        "schemaVersion",
        "version",
        "editable",
        "time",
        "refresh",
        "timezone",
        "templating",
        "panels",
    }
)
PANEL_KEYS = frozenset(
    {"id", "type", "title", "description", "gridPos", "datasource", "targets", "fieldConfig"}
)
TARGET_KEYS = frozenset({"refId", "expr", "legendFormat", "datasource"})
VARIABLE_KEYS = frozenset(
    {
        "name",
        "label",
        "type",
        "datasource",
        "query",
        "definition",
        "refresh",
        "sort",
        "multi",
        "includeAll",
        "allValue",
        "current",
    }
)
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__range", "__interval"})
OTHER_METRICS = re.compile(r"^(asterisk_\w+|up)$")  # Asterisk's res_prometheus and Prometheus itself
PROMQL_WORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
)
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
# Labels every scraped series has besides the metric's own.
TARGET_LABELS = frozenset({"instance", "job", "role"})


# ------------------------------------------------------------------------------------- shared helpers
@dataclass(frozen=True)
class Exported:
    """One metric family of the router: its name, type, labels, and the series names it exposes."""

    name: str
    kind: str
    labels: frozenset[str]
    samples: frozenset[str]


def exported_metrics() -> dict[str, Exported]:
    """Every metric family :class:`Metrics` defines, by family name."""
    found: dict[str, Exported] = {}
    for value in vars(Metrics()).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        name: str = value._name  # type: ignore[attr-defined]
        kind: str = value._type  # type: ignore[attr-defined]
        labels = frozenset(value._labelnames)  # type: ignore[attr-defined]
        if kind == "histogram":
            labels |= {"le"}
        samples = frozenset(name + suffix for suffix in SAMPLE_SUFFIXES[kind])
        found[name] = Exported(name, kind, labels, samples)
    return found


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON by file name."""
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARD_DIR.glob("*.json"))}


def expressions(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, refId, expr) of every target of every panel."""
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            yield panel["title"], target["refId"], target["expr"]


_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_BRACES = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w:$.])([a-zA-Z_:][\w:]*)(\s*\()?")
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"")
_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*([a-zA-Z_]\w*)\s*\)$")


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: identifiers that are not functions, keywords or labels."""
    text = _STRINGS.sub('""', expr)
    text = _LABEL_LISTS.sub(" ", text)
    text = _BRACES.sub(" ", text)
    text = _RANGES.sub(" ", text)
    names: set[str] = set()
    for m in _IDENT.finditer(text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_WORDS or word.lower() in {"inf", "nan"}:
            continue
        names.add(word)
    return names


def selector_labels(expr: str) -> list[tuple[str, set[str]]]:
    """(metric, label names matched in its braces) for every ``metric{…}`` selector."""
    text = _STRINGS.sub(lambda m: '"' + "x" * (len(m.group(0)) - 2) + '"', expr)  # keep positions
    out = []
    for m in _SELECTOR.finditer(text):
        inner = expr[m.start(2) : m.end(2)]
        out.append((m.group(1), set(_MATCHER.findall(inner))))
    return out


def variables_used(expr: str) -> set[str]:
    return {a or b for a, b in _VARIABLE.findall(expr)}


def substitute(expr: str, values: Mapping[str, str], rate_interval: str, range_: str) -> str:
    """The expression as Grafana sends it: template variables and $__ built-ins replaced."""
    builtins = {"__rate_interval": rate_interval, "__range": range_, "__interval": rate_interval}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name in builtins:
            return builtins[name]
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr}")
        return values[name]

    return _VARIABLE.sub(repl, expr)


def balanced(expr: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in _STRINGS.sub('""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            return False
    return not stack


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_dashboard(d: Mapping[str, Any], known: Mapping[str, Exported]) -> list[str]:
    """Problems with one dashboard model (empty when fine)."""
    problems: list[str] = []

    def need(cond: bool, message: str) -> None:
        if not cond:
            problems.append(message)

    extra = set(d) - DASHBOARD_KEYS
    need(not extra, f"unvalidated dashboard fields {sorted(extra)}")
    need(isinstance(d.get("uid"), str) and bool(re.fullmatch(r"[a-z0-9-]{1,40}", d["uid"])), "uid")
    need(isinstance(d.get("title"), str) and bool(d["title"].strip()), "title")
    need(isinstance(d.get("description", ""), str), "description must be a string")
    need(isinstance(d.get("tags", []), list) and all(isinstance(t, str) for t in d.get("tags", [])), "tags")
    need(_is_int(d.get("schemaVersion")) and d["schemaVersion"] >= 30, "schemaVersion must be an int ≥ 30")
    need(_is_int(d.get("version", 1)), "version must be an int")
    need(isinstance(d.get("editable", True), bool), "editable must be a bool")
    need(isinstance(d.get("timezone", ""), str), "timezone must be a string")
    t = d.get("time")
    need(
        isinstance(t, dict) and set(t) == {"from", "to"} and all(isinstance(v, str) for v in t.values()),
        "time must be {from, to} strings",
    )
    need(isinstance(d.get("refresh"), str) and bool(re.fullmatch(r"\d+[smhd]", d["refresh"])), "refresh")

    # template variables
    templating = d.get("templating")
    variables: dict[str, dict[str, Any]] = {}
    if not (
        isinstance(templating, dict) and set(templating) == {"list"} and isinstance(templating["list"], list)
    ):
        problems.append("templating must be {list: [...]}")
    else:
        for v in templating["list"]:
            if not isinstance(v, dict):
                problems.append("template variable must be an object")
                continue
            name = v.get("name")
            where = f"variable {name!r}"
            need(not set(v) - VARIABLE_KEYS, f"{where}: unvalidated fields {sorted(set(v) - VARIABLE_KEYS)}")
            need(isinstance(name, str) and bool(re.fullmatch(r"[a-z_][a-z0-9_]*", name)), f"{where}: name")
            need(name not in variables, f"{where}: defined twice")
            need(v.get("type") == "query", f"{where}: type must be query")
            need(v.get("datasource") == DATASOURCE, f"{where}: datasource must be {DATASOURCE}")
            need(isinstance(v.get("label", ""), str), f"{where}: label")
            need(
                v.get("refresh") in (1, 2),
                f"{where}: refresh must be 1 (on load) or 2 (on time range change)",
            )
            need(_is_int(v.get("sort", 0)), f"{where}: sort")
            need(isinstance(v.get("multi", False), bool), f"{where}: multi must be a bool")
            need(isinstance(v.get("includeAll", False), bool), f"{where}: includeAll must be a bool")
            need("allValue" not in v or v.get("includeAll") is True, f"{where}: allValue without includeAll")
            need(isinstance(v.get("current", {}), dict), f"{where}: current must be an object")
            query = v.get("query")
            m = _LABEL_VALUES.match(query) if isinstance(query, str) else None
            if m is None:
                problems.append(f"{where}: query must be label_values(metric, label)")
            else:
                metric, label = m.groups()
                family = next((f for f in known.values() if metric in f.samples), None)
                need(family is not None, f"{where}: unknown metric {metric}")
                need(family is None or label in family.labels, f"{where}: {metric} has no label {label}")
                need(v.get("definition", query) == query, f"{where}: definition differs from query")
            if isinstance(name, str):
                variables[name] = v

    # panels
    panels = d.get("panels")
    if not isinstance(panels, list) or not panels:
        problems.append("panels must be a non-empty list")
        return problems
    ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    used_variables: set[str] = set()
    for p in panels:
        if not isinstance(p, dict):
            problems.append("panel must be an object")
            continue
        where = f"panel {p.get('id')} {p.get('title')!r}"
        need(not set(p) - PANEL_KEYS, f"{where}: unvalidated fields {sorted(set(p) - PANEL_KEYS)}")
        need(_is_int(p.get("id")) and p["id"] > 0 and p["id"] not in ids, f"{where}: id must be a unique int")
        if _is_int(p.get("id")):
            ids.add(p["id"])
        need(p.get("type") in PANEL_TYPES, f"{where}: type must be one of {sorted(PANEL_TYPES)}")
        need(isinstance(p.get("title"), str) and bool(p["title"].strip()), f"{where}: title")
        need(isinstance(p.get("description", ""), str), f"{where}: description")
        need(p.get("datasource") == DATASOURCE, f"{where}: datasource must be {DATASOURCE}")
        g = p.get("gridPos")
        if not (isinstance(g, dict) and set(g) == {"x", "y", "w", "h"} and all(_is_int(g[k]) for k in g)):
            problems.append(f"{where}: gridPos must be {{x, y, w, h}} ints")
        else:
            need(g["w"] >= 1 and g["h"] >= 1 and g["x"] >= 0 and g["y"] >= 0, f"{where}: gridPos sizes")
            need(g["x"] + g["w"] <= GRID_COLUMNS, f"{where}: wider than {GRID_COLUMNS} columns")
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    other = cells.setdefault((x, y), where)
                    if other != where:
                        problems.append(f"{where}: overlaps {other}")
                        break
                else:
                    continue
                break
        fc = p.get("fieldConfig")
        if not (isinstance(fc, dict) and set(fc) == {"defaults", "overrides"}):
            problems.append(f"{where}: fieldConfig must be {{defaults, overrides}}")
        else:
            need(isinstance(fc["defaults"], dict), f"{where}: fieldConfig.defaults must be an object")
            need(isinstance(fc["overrides"], list), f"{where}: fieldConfig.overrides must be a list")
            need(isinstance(fc["defaults"].get("unit", ""), str), f"{where}: unit must be a string")
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problems.append(f"{where}: targets must be a non-empty list")
            continue
        ref_ids: set[str] = set()
        for target in targets:
            if not isinstance(target, dict):
                problems.append(f"{where}: target must be an object")
                continue
            need(not set(target) - TARGET_KEYS, f"{where}: unvalidated target fields")
            ref = target.get("refId")
            need(
                isinstance(ref, str) and bool(re.fullmatch(r"[A-Z]", ref)) and ref not in ref_ids,
                f"{where}: refId",
            )
            ref_ids.add(str(ref))
            need(target.get("datasource", DATASOURCE) == DATASOURCE, f"{where}: target datasource")
            need(isinstance(target.get("legendFormat", ""), str), f"{where}: legendFormat must be a string")
            expr = target.get("expr")
            if not (isinstance(expr, str) and expr.strip()):
                problems.append(f"{where}: target {ref} has no expr")
                continue
            need(balanced(expr), f"{where}: unbalanced brackets in {expr}")
            for name in variables_used(expr):
                if name not in BUILTIN_VARIABLES:
                    need(name in variables, f"{where}: ${name} is not a template variable")
                    used_variables.add(name)
            samples = {s: f for f in known.values() for s in f.samples}
            for name in metric_names(expr):
                need(name in samples or bool(OTHER_METRICS.match(name)), f"{where}: unknown metric {name}")
            for name, labels in selector_labels(expr):
                if name in samples:
                    bad = labels - samples[name].labels - TARGET_LABELS
                    need(not bad, f"{where}: {name} has no label(s) {sorted(bad)}")
    unused = set(variables) - used_variables
    need(not unused, f"template variables never used: {sorted(unused)}")
    return problems


# ------------------------------------------------------------------------------------------- tests
DASHBOARDS = load_dashboards()


def test_the_five_dashboards_exist() -> None:
    uids = {d["uid"] for d in DASHBOARDS.values()}
    assert uids == {
        "fourteen-overview",
        "fourteen-area-code",
        "fourteen-municipality",
        "fourteen-recognition",
        "fourteen-health",
    }
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_is_a_valid_grafana_model(name: str) -> None:
    assert validate_dashboard(DASHBOARDS[name], exported_metrics()) == []


def test_validator_catches_mistakes() -> None:
    known = exported_metrics()
    good = DASHBOARDS["overview.json"]
    bad = json.loads(json.dumps(good))
    bad["panels"][1]["id"] = bad["panels"][0]["id"]
    bad["panels"][2]["gridPos"]["w"] = 30
    bad["panels"][3]["targets"][0]["expr"] = "sum(rate(fourteen_nonsense_total[5m]))"
    bad["panels"][4]["targets"][0].pop("refId")
    bad["panels"][5]["datasource"] = {"type": "prometheus", "uid": "other"}
    bad["panels"][6]["targets"][0]["expr"] = 'sum(rate(fourteen_calls_total{colour="red"}[5m]))'
    bad["panels"][7]["options"] = {}
    bad["templating"]["list"].append(dict(DASHBOARDS["area-code.json"]["templating"]["list"][0]))
    problems = "\n".join(validate_dashboard(bad, known))
    for expected in (
        "id must be a unique int",
        "wider than 24",
        "unknown metric fourteen_nonsense_total",
        "refId",
        "datasource must be",
        "has no label(s) ['colour']",
        "unvalidated fields ['options']",
        "template variables never used: ['area_code']",
    ):
        assert expected in problems


def test_metric_names_are_parsed_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, mode) (rate(fourteen_time_to_route_seconds_bucket{mode=~"$m"}'
        '[$__rate_interval]))) / on (instance) group_left up{job="fourteen"} or vector(0)'
    )
    assert metric_names(expr) == {"fourteen_time_to_route_seconds_bucket", "up"}
    assert selector_labels(expr) == [("fourteen_time_to_route_seconds_bucket", {"mode"}), ("up", {"job"})]
    assert variables_used(expr) == {"m", "__rate_interval"}
    assert substitute(expr, {"m": "menu"}, "1m", "1h").count("[1m]") == 1


def test_every_exported_metric_is_on_a_panel() -> None:
    used = {n for d in DASHBOARDS.values() for _, _, e in expressions(d) for n in metric_names(e)}
    unused = [f.name for f in exported_metrics().values() if not f.samples & used]
    assert unused == []


def test_exported_metrics_match_what_the_router_renders() -> None:
    """The family list used above is what /metrics really shows (unlabelled series appear at once)."""
    known = exported_metrics()
    text = Metrics().render().decode()
    families = {
        (n, k) for n, k in re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M) if not n.endswith("_created")
    }
    assert families == {(f.name + ("_total" if f.kind == "counter" else ""), f.kind) for f in known.values()}


def test_datasource_and_provider_files_agree_with_the_dashboards() -> None:
    ds = DATASOURCE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^\s+uid: fourteen-prometheus$", ds, re.M)
    assert re.search(r"^\s+type: prometheus$", ds, re.M)
    assert re.search(r"^apiVersion: 1$", ds, re.M)
    provider = PROVIDER_FILE.read_text(encoding="utf-8")
    assert re.search(r"^\s+type: file$", provider, re.M)
    assert re.search(r"^\s+path: \S+", provider, re.M)


def test_scrape_config_has_both_jobs() -> None:
    text = (MONITORING / "prometheus.yml").read_text(encoding="utf-8")
    assert re.findall(r"job_name: (\w+)", text) == ["fourteen", "asterisk"]
    assert re.search(r"^\s+scrape_interval: 5s$", text, re.M)
    assert "rules.yml" in text


def test_recording_rules_use_known_metrics() -> None:
    known = {s for f in exported_metrics().values() for s in f.samples}
    text = (MONITORING / "rules.yml").read_text(encoding="utf-8")
    body = "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith(("#", "- record:", "- name:"))
    )
    names = set(re.findall(r"(?<![\w:])(fourteen_\w+)(?![\w:])", body))
    assert names and names <= known


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) missing")
def test_promtool_accepts_config_rules_and_every_dashboard_expression(tmp_path: Path) -> None:
    """promtool parses PromQL offline: every dashboard expression goes in as a recording rule."""
    subprocess.run(["promtool", "check", "config", str(MONITORING / "prometheus.yml")], check=True)
    values = {"area_code": "0113", "municipality": "GM0664"}
    rules = [
        {"record": f"check:{d['uid'].replace('-', '_')}:{i}", "expr": substitute(e, values, "1m", "1h")}
        for d in DASHBOARDS.values()
        for i, (_, _, e) in enumerate(expressions(d))
    ]
    path = tmp_path / "exprs.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))  # JSON is YAML
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout
