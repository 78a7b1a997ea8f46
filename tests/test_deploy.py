"""deploy/: the Prometheus scrape config and the provisioned Grafana dashboard, checked without Docker.

The scrape targets must be compose services on the ports they listen on, the files compose mounts must
exist, and every metric a dashboard query names must be one the bot or the action server really exposes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, generate_latest

from actions.metrics import ActionMetrics
from bot.metrics import BotMetrics, OutboxCollector
from tests.test_compose import compose

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def exposed_metric_names() -> set[str]:
    """Sample names of both processes' /metrics (histograms with _bucket/_count/_sum, counters _total)."""

    class Stats:
        pending = 0
        sent = retried = retry_after_waits = failed = dropped_blocked = 0

    class Outbox:
        def stats(self) -> Stats:
            return Stats()

    bot = BotMetrics(CollectorRegistry())
    bot.exposition.add_live(OutboxCollector(Outbox()))
    bot.updates.labels("message")
    bot.replies.labels("sendMessage", "ok")
    bot.rasa.labels("ok")
    bot.platform.observe("GET /v1/slas", 200, 0.1)
    bot.handoffs.labels("opened")
    bot.csat.labels("5")
    actions = ActionMetrics(CollectorRegistry())
    actions.action.labels("action_x", "200")
    actions.outcomes.labels("saved", "other")
    names: set[str] = set()
    for registry in (bot.registry, actions.registry):
        for line in generate_latest(registry).decode().splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_compose_runs_prometheus_and_grafana_under_the_ops_profile() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["ops"]
        for volume in services[name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
    assert services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )  # no default admin password
    assert services["grafana"]["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert services["bot"]["environment"]["OPS_TOKEN"] == "${OPS_TOKEN:-}"  # unset: no /ops page


def test_prometheus_scrapes_both_processes_where_they_listen() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    services = compose()["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    ports = {
        "bot": services["bot"]["environment"]["BOT_HTTP_PORT"],
        "action-server": services["action-server"]["environment"]["ACTION_SERVER_PORT"],
    }
    for job_name, port in ports.items():
        job = jobs[job_name]
        assert job.get("metrics_path", "/metrics") == "/metrics"
        [target] = job["static_configs"][0]["targets"]
        host, _, target_port = target.partition(":")
        assert host in services and target_port == port
    assert re.fullmatch(r"\d+[smh]", config["global"]["scrape_interval"])


def test_grafana_provisioning_points_at_the_mounted_dashboard() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"] if volume.startswith("./"))
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")
    [provider] = providers["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    datasources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "kmbot.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]


def test_every_metric_the_dashboard_queries_is_exposed() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "kmbot.json").read_text())
    exposed = exposed_metric_names()
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bkmbot_[a-z_]+", target["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried <= exposed, f"not exposed: {sorted(queried - exposed)}"
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")"), expr
            assert not re.search(r'(user|chat|order|ticket)_id="', expr)
