"""The `bazaar` command: one entry point for every part of the local stack."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from typing import Optional

import click
import redis
from rich.console import Console
from rich.table import Table

from bazaar import rings
from bazaar.settings import get_stack
from bazaar.simulate import EngineUnreachable
from bazaar.stack import ServiceError, services
from spark_jobs import layout

console = Console()


def _set_profile(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> None:
    if value is not None:  # the stack and every process it starts read it as BAZAAR_PROFILE
        os.environ["BAZAAR_PROFILE"] = value


profile_option = click.option(
    "--profile", type=click.Choice(["local", "cluster"]), default=None, expose_value=False, is_eager=True,
    callback=_set_profile,
    help="`cluster`: the cluster shape on this machine, with its own home and ports (default: "
         "BAZAAR_PROFILE, else local).")


def _pick(names: tuple[str, ...]):
    all_services = services(get_stack())
    known = {s.name for s in all_services}
    unknown = set(names) - known
    if unknown:
        raise click.BadParameter(f"unknown service(s) {sorted(unknown)}; choose from {sorted(known)}")
    return [s for s in all_services if not names or s.name in names]


@click.group()
def main() -> None:
    """Bazaar: trade engine and economy-analytics pipeline."""


@main.command()
@click.argument("names", nargs=-1)
@profile_option
def up(names: tuple[str, ...]) -> None:
    """Start the local stack (or the named services); idempotent."""
    for svc in _pick(names):
        with console.status(f"starting {svc.name}…"):
            try:
                started = svc.start()
            except ServiceError as exc:
                console.print(f"[red]✗ {svc.name}[/red]: {exc}")
                sys.exit(1)
        console.print(f"[green]✓[/green] {svc.name} {'started' if started else 'already running'} at {svc.address}")


@main.command()
@click.argument("names", nargs=-1)
@profile_option
def down(names: tuple[str, ...]) -> None:
    """Stop what `up` started, in reverse order."""
    for svc in reversed(_pick(names)):
        stopped = svc.stop()
        console.print(f"{svc.name}: {'stopped' if stopped else 'was not running'}")


@main.command()
@profile_option
def status() -> None:
    """A table of services, and whether the tables hold every event the engine counted;
    exits 0 only when all are healthy and nothing is missing."""
    from bazaar import main_job

    from bazaar.stack import PrometheusService

    table = Table("service", "pid", "healthy", "restarts", "address", "detail")
    stack = get_stack()
    kept = services(stack)
    rows = [s.status() for s in kept]
    restarts = {s.name: s.restarts() for s in kept}
    if all(st.healthy for st in rows if st.name in ("redis", "metastore", "trino")):
        rows.append(main_job.tables_status(stack))
    for st in rows:
        table.add_row(st.name, str(st.pid or "-"), "[green]yes[/green]" if st.healthy else "[red]no[/red]",
                      str(restarts.get(st.name, "-")), st.address, st.detail)
    console.print(table)
    prometheus = PrometheusService(stack)
    if prometheus.is_healthy():
        glance = Table("at a glance (Prometheus)", "")
        for what, value in prometheus.glance():
            glance.add_row(what, value)
        console.print(glance)
    sys.exit(0 if all(st.healthy for st in rows) else 1)


@main.command()
@click.argument("name")
@click.option("-n", "--lines", default=50, show_default=True)
@profile_option
def logs(name: str, lines: int) -> None:
    """Print the end of a service's log."""
    (svc,) = _pick((name,))
    console.print(f"[bold]{svc.log_path}[/bold]")
    click.echo(svc.log_tail(lines))


@main.command()
@profile_option
def lag() -> None:
    """The relay's lag: outbox entries waiting for Kafka and the age of the oldest."""
    from bazaar.stack import RelayService

    lag = RelayService(get_stack()).lag()
    table = Table("waiting", "oldest age", "sent", "re-sent (possible duplicates)", "heartbeat age")
    fmt = lambda v: "-" if v is None else f"{v:.1f}s"  # noqa: E731
    table.add_row(str(lag.waiting), fmt(lag.oldest_age_s), str(lag.sent), str(lag.resent), fmt(lag.heartbeat_age_s))
    console.print(table)


@main.group()
def keys() -> None:
    """API keys for game backends: create, list, revoke (in the stack's Redis)."""


@contextmanager
def _keys():
    from engine.auth import Keys, KeyProblem
    from engine.db import make_redis

    stack = get_stack()
    client = make_redis(stack.redis)
    try:
        yield Keys(client, stack.redis.namespace)
    except KeyProblem as exc:
        raise click.ClickException(str(exc))
    except redis.RedisError as exc:
        raise click.ClickException(f"Redis at {stack.redis.redis_url} does not answer ({exc}); "
                                   "start it with `bazaar up redis`")
    finally:
        client.close()


@keys.command("create")
@click.option("--name", required=True, help="A name for the key's holder, unique (e.g. the game server's).")
@click.option("--rate", type=click.IntRange(1), default=None,
              help="Requests per second the key may make (default: BAZAAR_KEY_RATE, 1000).")
@click.option("--scope", type=click.Choice(["backend", "admin"]), default="backend", show_default=True,
              help="backend: players, trades, offers, player tokens; admin: also what reads the whole economy "
                   "(/economy/totals).")
@profile_option
def keys_create(name: str, rate: Optional[int], scope: str) -> None:
    """Print a new key, alone on one line: the only time it is shown (only its hash is kept)."""
    with _keys() as store:
        key = store.create(name, rate or get_stack().engine.key_rate, scope)
    click.echo(key)


@keys.command("list")
@profile_option
def keys_list() -> None:
    """Name, creation, last use and rate of every key (never the key itself)."""
    with _keys() as store:
        listed = store.list()
    table = Table("name", "scope", "created (UTC)", "last used (UTC)", "rate (req/s)")
    short = lambda iso: iso.replace("T", " ")[:19] if iso else "never"  # noqa: E731
    for k in listed:
        table.add_row(k.name, k.scope, short(k.created), short(k.last_used), f"{k.rate:,}")
    console.print(table)


@keys.command("revoke")
@click.argument("name")
@profile_option
def keys_revoke(name: str) -> None:
    """Revoke a key by name: the next request with it, or with a player token it minted, on any worker,
    is a 401."""
    with _keys() as store:
        store.revoke(name)
    console.print(f"revoked {name!r} and the player tokens it minted")


@main.command()
@click.option("--chunk", type=click.IntRange(1), default=100, show_default=True,
              help="Players counted in one step (a step holds Redis about 5 ms per 1,000 players).")
@click.option("--pause-ms", type=click.IntRange(0), default=40, show_default=True,
              help="Milliseconds between steps, for the trades waiting on Redis.")
@profile_option
def audit(chunk: int, pause_ms: int) -> None:
    """Count every inventory and the escrow again, in steps while trading goes on, and hold the count
    against the running totals `/economy/totals` answers from; exits 1 when they differ."""
    from rich.progress import Progress

    from engine.db import make_store
    from engine.offerbook import OfferBook
    from engine.store import StoreUnavailable

    stack = get_stack()
    book = OfferBook(make_store(stack.engine))
    try:
        with Progress(console=console) as bar:
            task = bar.add_task("counting players", total=None)
            found = book.audit(chunk, pause_ms / 1000, progress=lambda done, of: bar.update(task, completed=done,
                                                                                                 total=of))
    except (StoreUnavailable, redis.RedisError) as exc:
        raise click.ClickException(f"Redis at {stack.redis.redis_url} does not answer ({exc}); "
                                   "start it with `bazaar up redis`")
    table = Table("", "counted", "running totals")
    for name in ("players", "open_offers", "inventory_gold", "escrow_gold"):
        table.add_row(name, f"{getattr(found.found, name):,}", f"{getattr(found.kept, name):,}")
    for name in ("inventory_items", "escrow_items"):
        a, b = getattr(found.found, name), getattr(found.kept, name)
        table.add_row(f"{name} (units)", f"{sum(a.values()):,}", f"{sum(b.values()):,}")
        for item in sorted(i for i in set(a) | set(b) if a.get(i, 0) != b.get(i, 0)):
            table.add_row(f"  item {item}", f"{a.get(item, 0):,}", f"{b.get(item, 0):,}")
    console.print(table)
    if not found.matches:
        console.print("[red]the running totals differ from the count[/red]: a write moved goods without them. "
                      "Delete the totals (`DEL <namespace>:totals` in Redis) to have the next `/economy/totals` "
                      "count them again in one step, and report the difference.")
        sys.exit(1)
    console.print("[green]the running totals match the count[/green]")


@main.group()
def tokens() -> None:
    """Player tokens: revoke a player's (the game backend mints them with its key)."""


@tokens.command("revoke")
@click.option("--player", "player_id", type=click.IntRange(1), required=True, help="The player's id.")
@profile_option
def tokens_revoke(player_id: int) -> None:
    """Refuse every token of the player minted so far, on the next request on any worker (tokens the game
    mints from now on hold)."""
    with _keys() as store:
        store.revoke_player_tokens(player_id)
    console.print(f"player {player_id}'s tokens minted so far are revoked")


@main.group()
def credentials() -> None:
    """What a client needs to connect to one of the stack's services, as one JSON object."""


@credentials.command("trino")
@click.option("--owner", is_flag=True, help="The warehouse owner's, which may write: for repairs, not for reading.")
@profile_option
def credentials_trino(owner: bool) -> None:
    """Trino's reader (or owner): host, port, user, password, http_scheme and the CA file to check it with."""
    trino = get_stack().trino
    if owner:
        trino = trino.as_owner()
    if trino.trino_password is None:
        raise click.ClickException("no Trino password is set: set BAZAAR_TRINO_PASSWORD, or run `bazaar up` once")
    click.echo(json.dumps({"host": trino.trino_host, "port": trino.trino_port, "user": trino.trino_user,
                           "password": trino.trino_password.get_secret_value(), "http_scheme": trino.trino_http_scheme,
                           "catalog": trino.trino_catalog, "schema": trino.database,
                           "ca_file": str(trino.trino_ca_file) if trino.trino_ca_file else None}))


@main.command("reports")
@click.option("--only", "only", multiple=True, metavar="NAME",
              help="Only this report (repeatable, or comma-separated); by default every one.")
@click.option("--rows", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Rows shown of each.")
@profile_option
def reports_command(only: tuple[str, ...], rows: int) -> None:
    """Materialize the reports now through Dagster (the job its schedule runs) and print them."""
    from dagster_graphql import DagsterGraphQLClientError

    from bazaar import main_job
    from orchestration import reports

    only = tuple(dict.fromkeys(n.strip() for names in only for n in names.split(",") if n.strip()))
    unknown = [n for n in only if n not in reports.REPORTS]
    if unknown:
        raise click.BadParameter(f"unknown report {', '.join(unknown)}; one of {', '.join(reports.REPORTS)}",
                                 param_hint="--only")
    stack = get_stack()
    try:
        with console.status("Dagster is materializing the reports…"):
            run_id = main_job.materialize_reports(stack, list(only), trigger="cli")
    except (TimeoutError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    except DagsterGraphQLClientError as exc:  # Dagster unreachable, or the job unknown to it
        raise click.ClickException(f"could not reach Dagster at {stack.dagster_url} ({exc}); is the stack up? "
                                   "(`bazaar status`, `bazaar up`)")
    for name in only or reports.REPORTS:
        console.print(f"[bold]{name}[/bold]: {reports.REPORTS[name].description}", soft_wrap=True)
        _print_frame(name, main_job.stored_report(stack, name).head(rows))
    console.print(f"materialized by Dagster run {run_id}: {stack.dagster_url}/runs/{run_id}; "
                  f"files at {stack.reports_url}", soft_wrap=True)


@credentials.command("kafka")
@profile_option
def credentials_kafka() -> None:
    """Kafka's admin (a super user: to inspect the topic or replay events into it): bootstrap_servers,
    security_protocol, sasl_mechanism, username and password, as kafka-python's clients name them."""
    stack = get_stack()
    login = stack.kafka_login("admin")
    if login.password is None:
        raise click.ClickException("no Kafka admin password is set: set BAZAAR_KAFKA_ADMIN_PASSWORD, or run "
                                   "`bazaar up` once")
    click.echo(json.dumps({"bootstrap_servers": stack.kafka_bootstrap, "security_protocol": login.protocol,
                           "sasl_mechanism": login.mechanism, "username": login.username,
                           "password": login.password, "topic": stack.topic.topic, "ca_file": None}))


@main.command()
@click.option("--day", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="A UTC day (today included).")
@click.option("--table", "tables", multiple=True, type=click.Choice(layout.TABLES), help="Only this table (repeatable).")
@profile_option
def compact(day, tables: tuple[str, ...]) -> None:
    """Compact a day of every table (or the named ones) now, by Dagster's compaction job; prints each
    table's files and rows before and after, as Trino reads them."""
    from bazaar import main_job
    from orchestration import warehouse

    stack, day = get_stack(), day.date().isoformat()
    names = list(tables or layout.TABLES)
    try:
        before = warehouse.day_layout(stack.trino, names, day)
        with console.status(f"Dagster is compacting {day}…"):
            run_id = main_job.compact(stack, day, names if tables else [])
        after = warehouse.day_layout(stack.trino, names, day)
    except (TimeoutError, RuntimeError) as exc:
        raise click.ClickException(str(exc))
    except Exception as exc:  # Trino or Dagster not answering
        raise click.ClickException(f"{str(exc).splitlines()[0][:200]}; is the stack up? (`bazaar status`)")
    table = Table("table", "files before", "files after", "rows before", "rows after", title=f"{day}: run {run_id}")
    for name in names:
        table.add_row(name, f"{before.files[name]:,}", f"{after.files[name]:,}", f"{before.rows[name]:,}",
                      f"{after.rows[name]:,}")
    console.print(table)


def _pattern_list(known: tuple[str, ...]):
    def parse(ctx, param, value: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))  # in order, once each
        unknown = [n for n in names if n not in known]
        if unknown:
            raise click.BadParameter(f"unknown {', '.join(unknown)}; choose from {', '.join(known)}")
        if not names:
            raise click.BadParameter(f"name one or more of {', '.join(known)} (no fraud at all: --cheater-share 0)")
        return names
    return parse


def _sim_options(players: int, trades: int):
    def wrap(f):
        for opt in reversed([
            click.option("--players", default=players, show_default=True, type=click.IntRange(2, 1_000_000)),
            click.option("--trades", default=trades, show_default=True, type=click.IntRange(0, 100_000_000)),
            click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256),
                         help="Requests in flight at once."),
            click.option("--cheater-share", default=0.02, show_default=True,
                         type=click.FloatRange(0, 0.5, max_open=True),
                         help="Share of players in fraud rings, the patterns in turn (at least one ring of each)."),
            click.option("--patterns", default=",".join(rings.FRAUD), show_default=True,
                         callback=_pattern_list(rings.FRAUD),
                         help="The fraud patterns planted, comma-separated."),
            click.option("--lookalike-share", default=0.03, show_default=True,
                         type=click.FloatRange(0, 0.5, max_open=True),
                         help="Share of players in honest groups shaped like fraud (friends' gifts, guild banks, "
                              "veterans helping newcomers)."),
            click.option("--offer-share", default=0.2, show_default=True, type=click.FloatRange(0, 1),
                         help="Share of honest trades made through offers (opened, then accepted or cancelled)."),
            click.option("--seed", type=int, default=7, show_default=True, help="Random seed."),
        ]):
            f = opt(f)
        return f
    return wrap


@main.command()
@_sim_options(players=100, trades=1000)
@click.option("--url", default=None, help="Engine URL (default: the local stack's).")
@profile_option
def simulate(players: int, trades: int, concurrency: int, cheater_share: float, patterns: tuple[str, ...],
             lookalike_share: float, offer_share: float, seed: int, url: Optional[str]) -> None:
    """Create players and trade between them through the engine's HTTP API.

    The ground truth (requests, answers, who cheats) is written under HOME/simulation."""
    from bazaar import main_job

    stack = get_stack()
    try:
        summary, _ = main_job.simulate(stack, players, trades, concurrency, cheater_share, seed, url=url,
                                       offer_share=offer_share, lookalike_share=lookalike_share, patterns=patterns)
    except (EngineUnreachable, FileNotFoundError) as exc:
        raise click.ClickException(str(exc))
    _print_summary(summary)
    console.print(f"ground truth in {main_job.simulation_dir(stack)}")


def _print_summary(summary) -> None:
    table = Table("outcome", "count", title=f"{summary.trades:,} trades in {summary.seconds:.1f}s "
                                           f"({summary.trades / max(summary.seconds, 1e-9):,.0f}/s)")
    table.add_row("players created", f"{summary.players:,}")
    table.add_row("executed", f"{summary.executed:,}")
    for kind, n in summary.by_kind.most_common():
        table.add_row(f"  executed {kind}", f"{n:,}")
    for reason, n in summary.rejected.most_common():
        table.add_row(f"rejected: {reason}", f"{n:,}")
    for what in ("opened", "accepted", "cancelled", "expired", "refused"):
        if summary.offers[what]:
            table.add_row(f"offers {what}", f"{summary.offers[what]:,}")
    for what, n in summary.errors.most_common():
        table.add_row(f"[red]error: {what}[/red]", f"{n:,}")
    console.print(table)
    if summary.unplanted:
        console.print(f"[yellow]not planted: {', '.join(summary.unplanted)}: rings hold at most half the players, "
                      f"and {summary.players:,} leave no room for them; play more players (--players)[/yellow]")


@main.command()
@_sim_options(players=1000, trades=10_000)
@profile_option
def demo(players: int, trades: int, concurrency: int, cheater_share: float, patterns: tuple[str, ...],
         lookalike_share: float, offer_share: float, seed: int) -> None:
    """The main job: bring the stack up, play an economy through it, have Dagster
    materialize the reports, and show the seed's answers and the suspected cheaters."""
    from bazaar import main_job

    started = time.monotonic()
    click.get_current_context().invoke(up)
    stack = get_stack()
    try:
        summary, truth = main_job.simulate(stack, players, trades, concurrency, cheater_share, seed,
                                           offer_share=offer_share, lookalike_share=lookalike_share,
                                           patterns=patterns)
        _print_summary(summary)
        with console.status("waiting until the tables hold every event…"):
            tables = main_job.wait_until_complete(stack)
        console.print(f"tables: {tables['trades']:,} trade events, {tables['player_states']:,} player states and "
                      f"{tables['offers']:,} offer events")
        with console.status("Dagster is materializing the reports…"):
            run_id = main_job.materialize_reports(stack)
    except (EngineUnreachable, TimeoutError, RuntimeError) as exc:  # unreachable, stalled, or a failed run
        raise click.ClickException(str(exc))
    console.print(f"reports materialized by Dagster run {run_id}")
    main_job.show(console, stack, truth, _print_frame)
    console.print(f"done in {time.monotonic() - started:.0f}s\n"
                  f"Dagster UI: {stack.dagster_url}  reports: {stack.reports_url}  "
                  f"live dashboard: {stack.dashboard_url}  "
                  f"engine: {stack.engine_url} (API docs {stack.engine_url}/docs)  "
                  f"Trino: https://{stack.trino.trino_host}:{stack.trino.trino_port} (`bazaar credentials trino`)  "
                  f"Prometheus: {stack.prometheus_url}\n"
                  f"stop everything with `bazaar down{' --profile cluster' if stack.local.profile == 'cluster' else ''}`")


def _cell(value) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    if isinstance(value, float) and value.is_integer():  # an integer column that held a null
        return str(int(value))
    return str(value)


def _print_frame(title: str, frame) -> None:
    table = Table(*[str(c) for c in frame.columns], title=title)
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    console.print(table)
