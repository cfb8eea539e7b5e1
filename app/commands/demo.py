"""``nbo demo``: the whole pipeline on a local stack, with a summary a person can read.

Brings the local stack up unless Kafka and Redis are configured, creates the topics, loads a
generated shop catalogue (or MovieLens movies), starts ``nbo worker`` as a child process, produces
a realistic event stream with a progress bar, waits until the worker has consumed all of it, and
prints throughput, offers published, a few users with their strongest tags and offers, and where
to look further, and the URL of ``nbo console`` (started beside the worker, same token). With a
terminal attached it keeps the worker, the lookups and the console running until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.commands.child_worker import ChildWorker
from app.commands.kafka_io import keyed_json, send_all
from app.commands.tokens import create_client
from app.connections import kafka_client_kwargs
from app.core.access import Scope
from app.datasets.movielens import load_movielens, rating_events
from app.datasets.synthetic import ShopSpec, build_shop, generate_events
from app.settings import Settings, kafka_bootstrap_or_local, redis_url_or_local
from app.topics import ensure_topics, topic_specs


@dataclass(frozen=True)
class DemoOptions:
    """What to run: the synthetic shop (``events`` events) or a MovieLens directory."""

    events: int = 50_000
    movielens: Path | None = None
    keep_running: bool = False
    seed: int = 42


def _services(settings: Settings) -> tuple[str, str]:
    if settings.kafka_bootstrap and settings.redis_url:
        return kafka_bootstrap_or_local(settings), redis_url_or_local(settings)
    from app.stack import stack_up

    print("== starting the local stack (Kafka + Redis)")
    info = stack_up(settings)
    return info.kafka_bootstrap, info.redis_url


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the demo (see module doc); returns the exit code. A SIGTERM ends it as Ctrl-C
    does: the worker, the lookups and the console it started are stopped with it (they run in
    sessions of their own, so a signal to the demo alone would leave them running)."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return _run_demo(settings, options)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo(settings: Settings, options: DemoOptions) -> int:
    bootstrap, redis_url = _services(settings)
    kafka = kafka_client_kwargs(settings) if settings.kafka_bootstrap else bootstrap
    run = uuid.uuid4().hex[:6]
    if options.movielens is not None:
        movielens = load_movielens(options.movielens)
        items, offers = movielens.items, movielens.offers
        events = list(rating_events(movielens.ratings_path))
        source = f"MovieLens at {options.movielens}"
    else:
        shop = build_shop(ShopSpec(seed=options.seed))
        items, offers = shop.items, shop.offers
        start = int(time.time() * 1000) - 7 * 86_400_000
        events = list(generate_events(shop, options.events, start, seed=options.seed))
        source = "a generated shop"
    for event in events:
        event["event_id"] = f"{event['event_id']}-{run}"

    asyncio.run(ensure_topics(kafka, topic_specs(settings), settings.topic_replication_factor))
    print(f"== catalogue from {source}: {len(items)} items, {len(offers)} offers")
    for topic, docs, key in (
        (settings.topic_item_catalog, items, "item_id"),
        (settings.topic_offer_catalog, offers, "offer_id"),
    ):
        asyncio.run(send_all(kafka, topic, keyed_json(docs, key), total=len(docs)))

    # a client of the lookups for this run, with every scope (its token is printed below)
    tokens_file = settings.stack_dir / "demo-api-tokens"
    tokens_file.unlink(missing_ok=True)
    token = create_client(tokens_file, "demo", list(Scope))
    env = {
        **os.environ,
        "NBO_KAFKA_BOOTSTRAP": bootstrap,
        "NBO_REDIS_URL": redis_url,
        "NBO_API_TOKENS_FILE": str(tokens_file),
    }
    worker = ChildWorker(env, settings.web_port, settings.stack_dir / "demo-worker.log")
    lookups: ChildWorker | None = None
    console: ChildWorker | None = None
    try:
        print(f"== starting the worker (log: {worker.log_path})")
        lookups = ChildWorker(
            env,
            settings.api_port,
            settings.stack_dir / "demo-api.log",
            api_token=token,
            command=("api", "--loglevel", "warning"),
        )
        console = ChildWorker(
            env,
            settings.console_port,
            settings.stack_dir / "demo-console.log",
            command=("console",),
            ready_path="/healthz",
        )
        worker.wait_ready()
        lookups.wait_ready()
        console.wait_ready()
        before = worker.metrics()
        print(f"== producing {len(events)} events to {settings.topic_user_events}")
        started = time.monotonic()
        asyncio.run(
            send_all(
                kafka,
                settings.topic_user_events,
                keyed_json(events, "user_id"),
                total=len(events),
                description="events",
            )
        )
        produced_s = time.monotonic() - started
        received = 0.0
        while received < len(events):
            if worker.proc.poll() is not None:
                raise RuntimeError(f"the worker exited; see {worker.log_path}")
            now = worker.metrics()
            received = now.get("nbo_events_received", 0) - before.get("nbo_events_received", 0)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        after = worker.metrics()
        _summary(worker, lookups, events, before, after, elapsed, produced_s, settings)
        if options.keep_running:
            print("\nThe worker, the lookups and the console keep running; Ctrl-C stops them.")
            try:
                while worker.proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        if console is not None:
            console.stop()
        if lookups is not None:
            lookups.stop()
        worker.stop()
    return 0


def _summary(
    worker: ChildWorker,
    lookups: ChildWorker,
    events: list[dict[str, Any]],
    before: dict[str, float],
    after: dict[str, float],
    elapsed: float,
    produced_s: float,
    settings: Settings,
) -> None:
    def delta(name: str) -> int:
        """The change of metric ``name``, summed over its labels (``name{...}``) if any."""

        def total(samples: dict[str, float]) -> float:
            return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))

        return int(total(after) - total(before))

    n = len(events)
    print("\n== summary")
    print(
        f"events consumed     {delta('nbo_events_received'):>10,}  in {elapsed:.1f} s "
        f"({n / elapsed:,.0f} events/s end to end; producing took {produced_s:.1f} s)"
    )
    print(f"events applied      {delta('nbo_events_applied'):>10,}")
    print(f"duplicates skipped  {delta('nbo_events_deduplicated'):>10,}")
    print(f"dead-lettered       {delta('nbo_events_dead_lettered'):>10,}")
    print(f"offers published    {delta('nbo_offers_published'):>10,}")

    busiest = [u for u, _ in Counter(e["user_id"] for e in events).most_common(3)]
    for user in busiest:
        status, body = lookups.get(f"/users/{user}/profile")
        if status != 200:
            continue
        profile = json.loads(body)
        tags = ", ".join(f"{t['tag']} ({t['score']:.2f})" for t in profile["strongest_tags"][:4])
        print(f"\n{user}: {profile['n_events']} events; strongest tags: {tags}")
        status, body = lookups.get(f"/users/{user}/offers")
        if status == 200:
            message = json.loads(body)
            group = message.get("group", "personalised")
            print(
                f"  offers via {message['channel']} (trigger {message['trigger']['type']}; "
                f"{'control group, not personalised' if group == 'control' else group}):"
            )
            for offer in message["offers"]:
                print(
                    f"  {offer['rank']}. {offer['offer_id']:<12} {offer['score']:.3f}  "
                    f"{offer['reason']}"
                )

    port, user = settings.api_port, busiest[0] if busiest else "user-00000"
    print("\n== look further")
    auth = f'-H "Authorization: Bearer {lookups.api_token}"'
    print(f"  curl {auth} http://127.0.0.1:{port}/users/{user}/offers")
    print(f"  curl {auth} http://127.0.0.1:{port}/users/{user}/profile")
    print(f"  curl http://127.0.0.1:{settings.web_port}/metrics")
    print(f"  redis-cli -p {settings.stack_redis_port} HGETALL 'nbo:{{u:{user}}}:profile'")
    print(f"  redis-cli -p {settings.stack_redis_port} GET 'nbo:{{u:{user}}}:offers'")
    print("  .venv/bin/nbo tail --from-beginning --max 3   # next-best-offer messages")
    print("\n== the console (log in with the token below; it has the console scope)")
    print(f"  http://127.0.0.1:{settings.console_port}/")
    print(f"  token: {lookups.api_token}")
