"""The one settings object of nbo-stream.

Every knob is read from the environment with the ``NBO_`` prefix (``NBO_KAFKA_BOOTSTRAP``,
``NBO_REDIS_URL`` ...), or from a ``.env`` file in the working directory. Build it once with
:func:`load_settings` and pass it down; nothing reads the environment anywhere else.
Secrets are ``SecretStr`` so they never show in logs or reprs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core import defaults
from app.core.weights import EventWeights


class Settings(BaseSettings):
    """All runtime configuration. Units are in the field names (``_s`` seconds, ``_ms`` ms)."""

    model_config = SettingsConfigDict(
        env_prefix="NBO_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- services -------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers, comma separated (host:port). "
        "Unset: commands that need a broker use the local stack.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL (redis:// or rediss://, may carry ACL user and password). "
        "Unset: commands that need Redis use the local stack.",
    )

    redis_cluster: bool = Field(
        default=False, description="Use the Redis Cluster client (the URL names any node)."
    )

    # --- secure connections -------------------------------------------------------------------
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle for Kafka TLS (system CAs if unset)."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM) for Kafka mutual TLS."
    )
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="Client key (PEM) for Kafka mutual TLS."
    )
    redis_ssl_ca: Path | None = Field(
        default=None, description="CA bundle for rediss:// (system CAs if unset)."
    )
    redis_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM) for Redis mutual TLS."
    )
    redis_ssl_keyfile: Path | None = Field(
        default=None, description="Client key (PEM) for Redis mutual TLS."
    )

    # --- worker and topics ------------------------------------------------------------------
    app_id: str = Field(default="nbo-stream", description="faust app id = Kafka consumer group.")
    topic_user_events: str = Field(default="user-events", description="Input events topic.")
    topic_item_catalog: str = Field(default="item-catalog", description="Items (compacted).")
    topic_offer_catalog: str = Field(default="offer-catalog", description="Offers (compacted).")
    topic_item_neighbours: str = Field(
        default="item-neighbours",
        description="Co-occurrence neighbours per item, key item_id (compacted; nbo embed "
        "--publish writes it).",
    )
    topic_offers: str = Field(default="next-best-offers", description="Outbound offer messages.")
    topic_dead_letters: str = Field(default="user-events.dlq", description="Rejected events.")
    topic_decisions: str = Field(
        default="nbo-decisions", description="One audit record per decision, sent or not."
    )
    topic_user_consent: str = Field(
        default="user-consent", description="Consent records, key user_id (compacted)."
    )
    topic_privacy_requests: str = Field(
        default="privacy-requests", description="Erase and export requests, key user_id."
    )
    topic_privacy_audit: str = Field(
        default="privacy-audit", description="Completed privacy requests and exports."
    )
    declare_topics: bool = Field(
        default=True, description="Create missing topics; false when an operator manages them."
    )
    topic_replication_factor: int = Field(
        default=1, ge=1, description="Replication factor of topics the app creates."
    )
    user_events_partitions: int = Field(
        default=12, ge=1, description="Partitions of user-events when the app creates it."
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        description="Events per batch at most (a fetch of user-events holds at most as many).",
    )
    batch_within_s: float = Field(
        default=0.002,
        gt=0,
        description="Longest wait for more fetches to fill a batch, seconds (the broker "
        "already gathers each fetch: NBO_FETCH_MIN_BYTES, NBO_FETCH_MAX_WAIT_S).",
    )
    control_within_s: float = Field(
        default=0.05,
        gt=0,
        description="Longest wait to gather consent records or privacy requests into one "
        "batch, seconds (each of those agents wakes this often while its topic is quiet).",
    )
    fetch_min_bytes: int = Field(
        default=65_536,
        ge=1,
        description="Bytes the broker gathers before it answers a fetch of the worker's "
        "consumer (or NBO_FETCH_MAX_WAIT_S passed).",
    )
    fetch_max_wait_s: float = Field(
        default=0.05,
        gt=0,
        le=5,
        description="Longest the broker holds a fetch to gather NBO_FETCH_MIN_BYTES, seconds.",
    )
    queued_fetches: int = Field(
        default=8,
        ge=1,
        description="Fetches of user-events (each at most NBO_BATCH_SIZE records) waiting for "
        "the agent at most.",
    )
    session_timeout_s: float = Field(
        default=30.0, gt=0, description="Kafka consumer session timeout, seconds."
    )
    heartbeat_interval_s: float = Field(
        default=3.0, gt=0, description="Kafka consumer heartbeat interval, seconds."
    )
    commit_interval_s: float = Field(
        default=2.8, gt=0, description="How often consumed offsets are committed, seconds."
    )
    max_clock_skew_s: float = Field(
        default=900.0,
        ge=0,
        description="Events, consent records and privacy requests dated more than this ahead "
        "of the worker's clock are dead-lettered (FutureTimestamp), seconds.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="Worker log lines: text, or one JSON object per line."
    )
    web_port: int = Field(default=6066, description="HTTP port of health, readiness, metrics.")
    web_host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    redis_ack_replicas: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Replicas that must hold a commit (WAIT) before the batch's offsets are "
        "committed; 0: the primary's acknowledgement (then run Redis with appendfsync always "
        "so an acknowledged write survives a crash). Single server or Sentinel only.",
    )
    redis_ack_timeout_ms: int = Field(
        default=1_000, ge=10, le=60_000, description="How long WAIT waits for those replicas, ms."
    )
    api_port: int = Field(default=6067, description="HTTP port of `nbo api` (the /users lookups).")
    api_host: str = Field(default="127.0.0.1", description="HTTP bind address of `nbo api`.")
    api_metrics_port: int = Field(
        default=6068, description="HTTP port of `nbo api`'s /metrics (for the monitoring only)."
    )
    api_tokens_file: Path | None = Field(
        default=None,
        description="API clients of the /users lookups, one a line: name, SHA-256 of the "
        "token, scopes (`nbo token create`); reread when it changes. Unset: every lookup "
        "is refused (401).",
    )
    api_rate_per_s: float = Field(
        default=20.0, gt=0, description="Lookups a second per API client, on average."
    )
    api_burst: int = Field(
        default=40, ge=1, description="Lookups an API client may make at once (its burst)."
    )
    api_refusal_hold_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="Longest a refused lookup (401, 403, 429) is held back before it is "
        "answered, so a client that floods the lookups or guesses tokens gets its answers "
        "at about its rate (0: answered at once).",
    )
    console_port: int = Field(default=6069, description="HTTP port of `nbo console`.")
    console_host: str = Field(
        default="127.0.0.1", description="HTTP bind address of `nbo console`."
    )
    console_secret: SecretStr | None = Field(
        default=None,
        description="Key that signs `nbo console`'s session cookies (HMAC-SHA256); unset: a "
        "random key per process (sessions end when it restarts; replicas need one shared key).",
    )
    console_session_s: int = Field(
        default=8 * 3600,
        ge=60,
        le=7 * 86400,
        description="How long a console session lasts after login, seconds.",
    )
    console_secure_cookie: bool = Field(
        default=False,
        description="Mark the console's session cookie Secure (set it when the console is "
        "served over HTTPS, e.g. behind a TLS proxy).",
    )
    console_sample_s: float = Field(
        default=10.0,
        ge=1.0,
        le=300.0,
        description="How often the console scrapes the workers' /metrics into its history, "
        "seconds.",
    )
    console_history_s: float = Field(
        default=3600.0,
        ge=60.0,
        le=86_400.0,
        description="How much history of the workers' counters the console keeps in memory "
        "(the Overview's longest window), seconds.",
    )
    console_dead_letters_shown: int = Field(
        default=10, ge=0, le=200, description="Newest dead letters the Overview page shows."
    )
    console_metrics_urls: list[str] = Field(
        default_factory=list,
        description="The workers' /metrics endpoints the console reads, as JSON "
        "(NBO_CONSOLE_METRICS_URLS='[\"http://w1:6066/metrics\", ...]'); empty: the local "
        "worker's, on NBO_WEB_HOST:NBO_WEB_PORT.",
    )
    console_simulate_max_hours: float = Field(
        default=168.0,
        gt=0,
        le=90 * 24,
        description="The most hours of user-events the console's Simulate page may replay.",
    )
    console_simulate_max_events: int = Field(
        default=50_000,
        ge=1,
        le=1_000_000,
        description="The most events (the newest) the console's Simulate page replays; about "
        "a minute per 50,000 events (docs/console.md).",
    )

    # --- model -------------------------------------------------------------------------------
    vector_dim: int = Field(
        default=defaults.VECTOR_DIM, ge=2, description="Preference vector dimension D."
    )
    half_life_s: float = Field(
        default=float(defaults.PROFILE_HALF_LIFE_S),
        gt=0,
        description="Half-life of an event's weight, seconds.",
    )
    top_k: int = Field(default=defaults.TOP_K, ge=1, le=100, description="Offers per message.")
    w_affinity: float = Field(
        default=defaults.W_AFFINITY,
        ge=0,
        description="Weight of the cosine between user and offer vectors.",
    )
    w_value: float = Field(
        default=defaults.W_VALUE,
        ge=0,
        description="Weight of the offer's value, normalised by the catalogue's largest.",
    )
    w_popularity: float = Field(
        default=defaults.W_POPULARITY, ge=0, description="Weight of the popularity prior."
    )
    w_priority: float = Field(
        default=defaults.W_PRIORITY,
        ge=0,
        description="Weight of the offer's priority, normalised by the largest |priority|.",
    )
    event_weights: EventWeights = Field(
        default_factory=EventWeights,
        description="How much each event type moves a profile, as JSON "
        '(NBO_EVENT_WEIGHTS=\'{"view": 1, "purchase": 5, ...}\'; unnamed types keep their '
        "defaults, docs/contracts.md).",
    )
    w_cooccurrence: float = Field(
        default=defaults.W_COOCCURRENCE,
        ge=0,
        description="Weight of the co-occurrence part (neighbours of the user's recent items); "
        "counts only while item-neighbours has records; 0: off (no recent items read).",
    )
    w_restock: float = Field(
        default=defaults.W_RESTOCK,
        ge=0,
        description="Weight of the restock part of a repeatable purchased item the user is due "
        'to buy again (its offers say "Time to restock <title>?"); 0: due items are offered '
        "again without a lift.",
    )
    restock_due_fraction: float = Field(
        default=defaults.RESTOCK_DUE_FRACTION,
        gt=0,
        le=10,
        description="A repeatable purchased item is excluded until last purchase + this x the "
        "user's learned repurchase interval (event time), then offered again.",
    )
    restock_smoothing: float = Field(
        default=defaults.RESTOCK_SMOOTHING,
        gt=0,
        le=1,
        description="Weight of the newest gap between a user's purchases of an item in its "
        "learned interval (exponentially weighted mean).",
    )
    restock_prior_days: float = Field(
        default=defaults.RESTOCK_PRIOR_S / defaults.DAY_S,
        gt=0,
        le=3650,
        description="Repurchase interval of a user who bought a repeatable item once, when the "
        "catalogue gives the item no restock_days.",
    )
    restock_items_max: int = Field(
        default=defaults.RESTOCK_ITEMS_MAX,
        ge=0,
        le=10_000,
        description="Repeatable items whose repurchase cycle is kept per user (the most "
        "recently bought; stored in the profile hash).",
    )
    recent_items: int = Field(
        default=defaults.RECENT_ITEMS,
        ge=1,
        le=200,
        description="Newest distinct items per user that co-occurrence uses (read with the "
        "user from the seen set, which keeps 200).",
    )
    neighbours_max: int = Field(
        default=defaults.NEIGHBOURS_MAX,
        ge=1,
        le=10_000,
        description="Neighbours kept per item from item-neighbours (memory: about 8 bytes "
        "each per item; CPU of a ranking grows with recent items x neighbours).",
    )
    popularity_half_life_s: float = Field(
        default=float(defaults.POPULARITY_HALF_LIFE_S),
        gt=0,
        description="Half-life of the popularity prior, seconds of event time.",
    )
    offer_ttl_s: int = Field(default=86_400, ge=1, description="Offer message lifetime, seconds.")
    user_ttl_s: int = Field(
        default=30 * 86_400, ge=60, description="TTL of every per-user Redis key, seconds."
    )
    erasure_ttl_s: int = Field(
        default=defaults.ERASURE_TTL_S,
        ge=86_400,
        description="TTL of a user's erasure marker, seconds: at least the retention of "
        "user-events (and of any topic replayed into the workers).",
    )
    redis_prefix: str = Field(
        default="nbo",
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="Prefix of every Redis key (nbo:{u:<id>}:...).",
    )
    recent_event_ids: int = Field(
        default=defaults.RECENT_EVENT_IDS,
        ge=0,
        description="Event ids remembered per user to drop duplicates.",
    )
    cache_users: int = Field(
        default=20_000, ge=0, description="User states cached in worker memory."
    )
    model_version: str = Field(default="tags-v1", description="Model version in messages.")

    # --- decision policy ---------------------------------------------------------------------
    policy_path: Path | None = Field(
        default=None,
        description="Contact policy TOML file (caps, cooldowns, quiet hours, consent "
        "defaults); unset: the shipped app/policy/default_policy.toml.",
    )
    calibration_path: Path | None = Field(
        default=None,
        description="Calibration of the match percentage (JSON, written by nbo evaluate "
        "--write-calibration; fitted for the same model version and score settings, else "
        "the worker refuses to start): offers carry `match` and the policy's min_match "
        "holds weak ones back. Unset: no `match`, nothing held back for a weak match.",
    )
    cart_abandon_after_s: float = Field(
        default=1800.0,
        gt=0,
        description="An add_to_cart without a purchase of the item for this long (event "
        "time, seconds) triggers one cart-abandonment decision.",
    )
    cart_poll_interval_s: float = Field(
        default=5.0, gt=0, description="How often due cart timers are polled, seconds."
    )
    decisions_kept: int = Field(
        default=20, ge=1, le=1000, description="Decision records kept per user in Redis."
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="When set, no user id is stored in clear: keys, stored values and "
        "decision records use HMAC-SHA256(secret, user_id), message and decision ids derive "
        "from it, and a pending cart timer's id is sealed (AES-SIV).",
    )

    ann_min_offers: int = Field(
        default=defaults.ANN_MIN_OFFERS,
        ge=0,
        description="Catalogues of at least this many offers are ranked from approximate "
        "nearest candidates (faiss), rescored exactly; 0: always exact.",
    )

    # --- learning loop -----------------------------------------------------------------------
    exploration_weight: float = Field(
        default=defaults.EXPLORATION_WEIGHT,
        ge=0,
        description="Weight of the Thompson-sampling exploration part of a score (0: off).",
    )
    exploration_seed: int | None = Field(
        default=None, ge=0, description="Seed of the exploration draws (unset: OS entropy)."
    )
    offer_stats_half_life_s: float = Field(
        default=float(defaults.OFFER_STATS_HALF_LIFE_S),
        gt=0,
        description="Half-life of offer feedback counts, seconds.",
    )
    offer_stats_refresh_s: float = Field(
        default=5.0, gt=0, description="How often offer feedback stats are reread, seconds."
    )
    holdout_share: float = Field(
        default=defaults.HOLDOUT_SHARE,
        ge=0,
        le=0.5,
        description="Share of users in the control group (popularity ranking, same policy).",
    )
    holdout_salt: str = Field(
        default=defaults.HOLDOUT_SALT, description="Salt of the sticky holdout assignment."
    )

    # --- local stack (``nbo stack``) ------------------------------------------------------
    stack_dir: Path = Field(
        default=Path(".stack"),
        description="Where the local stack keeps data, logs, pid files and its env file.",
    )
    stack_cache_dir: Path = Field(
        default=Path(".cache/stack"),
        description="Where the Kafka jars resolved from Maven Central are cached.",
    )
    stack_kafka_port: int = Field(default=19092, description="Local broker's client port.")
    stack_controller_port: int = Field(default=19093, description="Local KRaft controller port.")
    stack_redis_port: int = Field(default=16379, description="Local Redis port.")
    stack_kafka_sasl_port: int | None = Field(
        default=None,
        description="Also listen with SASL_PLAINTEXT/SCRAM-SHA-512 on this port (off if unset).",
    )
    stack_kafka_sasl_username: str = Field(
        default="nbo", description="SCRAM user created in the local broker when SASL is on."
    )
    stack_kafka_sasl_password: SecretStr = Field(
        default=SecretStr("nbo-local-secret"), description="Password of that SCRAM user."
    )
    stack_kafka_ssl_port: int | None = Field(
        default=None,
        description="Also listen with mutual TLS (client certificate required) on this port "
        "(off if unset; needs the two PEM files below).",
    )
    stack_kafka_ssl_keystore: Path | None = Field(
        default=None,
        description="PEM with the local broker's private key (PKCS#8) and certificate chain.",
    )
    stack_kafka_ssl_truststore: Path | None = Field(
        default=None, description="PEM with the CA whose client certificates the broker accepts."
    )
    stack_start_timeout_s: float = Field(
        default=90.0, description="How long `nbo stack up` waits for readiness, seconds."
    )
    stack_kafka_heap: str = Field(default="512m", description="JVM -Xmx of the local broker.")


def load_settings() -> Settings:
    """Build the settings from the environment (the only place that does)."""
    return Settings()


def kafka_bootstrap_or_local(settings: Settings) -> str:
    """The configured bootstrap servers, else the local stack's broker address."""
    return settings.kafka_bootstrap or f"127.0.0.1:{settings.stack_kafka_port}"


def pseudonym_secret(settings: Settings) -> bytes | None:
    """``NBO_PSEUDONYM_SECRET`` as bytes, ``None`` when unset or empty."""
    if settings.pseudonym_secret is None:
        return None
    return settings.pseudonym_secret.get_secret_value().encode("utf-8") or None


def redis_url_or_local(settings: Settings) -> str:
    """The configured Redis URL (a secret), else the local stack's Redis."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    return f"redis://127.0.0.1:{settings.stack_redis_port}/0"
