"""The TOML configuration as pydantic models: every table, its keys, defaults and checks.

Every model forbids unknown keys: a typo must never silently drop a guard.
Money is `Decimal` (the loader parses TOML floats as Decimal, and strings work
too); booleans and integers are strict, so `dry_run = "no"` is an error rather
than a guess. A check across keys raises `FieldProblem`, which names the key
it is about so that the loader's message can point at it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from bot.capabilities.table import CAPABILITIES, ProbeConfig
from bot.pricing.cadence import Band
from config.schedule import AdSchedule, ScheduleConfig, TimeZoneName
from strategies.base import Side
from strategies.filters import CompetitorFilters

ORDER_STATUSES = ("new", "buyer_paid", "completed", "cancelled", "appeal", "stuck")
"""The statuses a reaction can be configured for under `[orders.on]`."""

TEMPLATE_SAMPLE: dict[str, object] = {
    "nickname": "alice",
    "amount": Decimal("100.00000000"),
    "asset": "USDT",
    "fiat": "RUB",
    "total": Decimal("9250.00"),
    "price": Decimal("92.50"),
    "order_no": "22812345678901234567",
    "pay_method": "Tinkoff",
}
"""The fields a chat template may use, with values of the types the order desk passes."""

TEMPLATE_FIELDS = tuple(TEMPLATE_SAMPLE)


class FieldProblem(ValueError):
    """A check across keys failed; `key` is the key (path) it is reported under."""

    def __init__(self, key: str | tuple[str | int, ...], message: str) -> None:
        self.key: tuple[str | int, ...] = (key,) if isinstance(key, str) else key
        super().__init__(message)


def show_value(value: object) -> str:
    """A value as it is written in TOML, for messages that say what was found."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return str(value)


def _number(value: object) -> object:
    """Seconds and factors: a TOML number (int or decimal), never a string or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"Input should be a number, got {show_value(value)}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
# Every interval has an upper bound: `inf` or 1e300 would park a poller for ever, silently.
HOUR, DAY = 3600.0, 86400.0
Seconds = Annotated[float, BeforeValidator(_number), Field(gt=0, le=DAY)]
PollSeconds = Annotated[float, BeforeValidator(_number), Field(gt=0, le=HOUR)]
Price = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
CHAT_MAX = 1000
"""Characters a rendered chat message may have. Binance documents no limit for the order
chat; its app's input box takes a few hundred characters, so a template over this is a
mistake (a width such as `{total:>2000000000}` would be 2 GB per message)."""
SPEC_MAX = 100  # the largest width or precision a template's format spec may ask for


class _Table(BaseModel):
    """A TOML table: unknown keys are errors; the word used for them in messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    unknown_word: ClassVar[str] = "key"


class BotConfig(_Table):
    """`[bot]`: switches, polling intervals (seconds) and the request budget."""

    dry_run: StrictBool = False
    kill_switch: StrictBool = False
    market_interval: PollSeconds = 10.0
    reference_interval: PollSeconds = 30.0
    my_ads_interval: PollSeconds = 60.0
    orders_interval: PollSeconds = 15.0
    weight_budget: StrictInt = Field(6000, ge=1, le=12000)
    max_in_flight: StrictInt = Field(3, ge=1, le=10)  # requests on the wire at once (per key)
    # requests waiting for a slot before the lowest priority is shed (writes are never shed)
    max_queued: StrictInt = Field(200, ge=10, le=10000)
    search_rows: StrictInt = Field(20, ge=1, le=20)
    # a reply larger than this is refused unread (the endpoint is failing): 4 MiB by default
    max_response_bytes: StrictInt = Field(4 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)
    decisions_retention_days: StrictInt = Field(30, ge=1, le=3650)
    reference_max_jump: Decimal = Field(Decimal(5), gt=0, le=100, allow_inf_nan=False)
    # after an ad update, the price set is the truth this long: reads may still show the old one
    settle_seconds: Annotated[float, BeforeValidator(_number), Field(ge=0, le=600)] = 45.0
    # the reference price for one payment method (payType); dropped while that call fails
    reference_pay_type: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,64}$")
    # the merchant's time zone (IANA name) for schedules, the view, the status page and the
    # reports; unset: the machine's own
    timezone: TimeZoneName = None


CadenceSeconds = Annotated[float, BeforeValidator(_number), Field(ge=0.2, le=HOUR)]


class CadenceConfig(_Table):
    """`[cadence]`: the band each market's search runs in (seconds), and the share of the
    weight budget all market reads together may spend (a hard cap, planned across markets).

    A file that sets `[bot] market_interval` and has no `[cadence]` table keeps that fixed
    interval, exactly as before the band (it chose how often to search; 1 s searches would
    surprise it). With the table, `[bot] market_interval` is the slow end unless `slow` is
    set; without `fast`, the fast end is 1 s, or the slow end if faster. A file with neither
    gets the band 1 to 10 s. `fast = slow` is a fixed interval. `calm`: seconds without a
    move before a fast market starts to slow down."""

    fast: CadenceSeconds | None = None
    slow: CadenceSeconds | None = None
    market_share: Number = Field(0.5, ge=0.05, le=1)
    calm: Annotated[float, BeforeValidator(_number), Field(ge=0, le=HOUR)] = 30.0


def _known_capability(name: str) -> str:
    if name not in CAPABILITIES:
        raise ValueError(f"unknown capability '{name}' (known: {', '.join(CAPABILITIES)})")
    return name


class CapabilitiesConfig(_Table):
    """`[capabilities]`: re-probing, flap damping, and what /readyz calls essential."""

    probe_first: Seconds = 60.0
    probe_factor: Number = Field(2.0, ge=1, le=10)
    probe_cap: Seconds = 1800.0
    probe_jitter: Number = Field(0.2, ge=0, lt=1)
    flap_window: Annotated[float, BeforeValidator(_number), Field(gt=0, le=7 * DAY)] = 3600.0
    flap_threshold: StrictInt = Field(3, ge=0, le=1000)
    trust_after: StrictInt = Field(3, ge=1, le=1000)
    essential: tuple[Annotated[str, AfterValidator(_known_capability)], ...] = (
        "market", "repricing",
    )

    @model_validator(mode="after")
    def _cap_above_first(self) -> CapabilitiesConfig:
        if self.probe_cap < self.probe_first:
            raise FieldProblem("probe_cap", f"must be at least probe_first ({self.probe_first:g})")
        return self

    def probe_config(self) -> ProbeConfig:
        """The registry's ProbeConfig built from this table."""
        return ProbeConfig(
            first=self.probe_first, factor=self.probe_factor, cap=self.probe_cap,
            jitter=self.probe_jitter, flap_window=self.flap_window,
            flap_threshold=self.flap_threshold, trust_after=self.trust_after,
        )


class Guards(_Table):
    """`[ads.guards]`: what the pricing engine enforces whatever the strategy decides.

    Prices are fiat per unit of the asset, also for floating ads (the engine
    turns them into a ratio). `None` switches a guard off.
    """

    floor: Price | None = None
    ceiling: Price | None = None
    reference_band: Decimal | None = Field(None, gt=0, lt=100, allow_inf_nan=False)
    min_change: Decimal = Field(Decimal(0), ge=0, allow_inf_nan=False)
    max_step: Price | None = None
    max_drift_per_hour: Price | None = None
    max_updates: StrictInt = Field(30, ge=1, le=100_000)
    update_window: Seconds = 3600.0
    min_interval: Annotated[float, BeforeValidator(_number), Field(ge=0, le=DAY)] = 10.0

    @model_validator(mode="after")
    def _bounds(self) -> Guards:
        if self.floor is None and self.ceiling is None:
            raise FieldProblem(
                "floor", "set a floor, a ceiling or both: the absolute prices no update may cross"
            )
        if self.floor is not None and self.ceiling is not None and self.floor >= self.ceiling:
            raise FieldProblem(
                "floor", f"{self.floor} must be below the ceiling ({self.ceiling})"
            )
        return self


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


Code = Annotated[str, BeforeValidator(_upper), Field(pattern=r"^[A-Z0-9]{2,12}$")]


class AdConfig(_Table):
    """One `[[ads]]` entry: which ad (adv_no, or asset + fiat + side), its strategy and guards.

    `on_unsafe`: what to do while the ad's price cannot be kept inside its guards (the
    exchange's band leaves no price within them, ad updates unavailable, market data stale,
    the kill switch on): "hold" keeps the price where it is; "hide" also hides the ad from
    search (`visible = 0`, the ad stays online) and shows it again once it is safe.
    """

    name: str | None = Field(None, min_length=1, max_length=64)
    adv_no: str | None = None
    asset: Code | None = None
    fiat: Code | None = None
    side: Annotated[Side, BeforeValidator(_upper)] | None = None
    strategy: str = Field(min_length=1)
    enabled: StrictBool = True
    params: dict[str, Any] = Field(default_factory=dict)
    filters: CompetitorFilters = Field(default_factory=CompetitorFilters)
    guards: Guards
    on_unsafe: Literal["hold", "hide"] = "hold"
    schedule: AdSchedule | None = None  # its own hours (config/schedule.py)

    @field_validator("adv_no", mode="before")
    @classmethod
    def _adv_no_is_text(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(
                f'write the ad id as a string: adv_no = "{value}" '
                "(ids are 19 to 20 digits and overflow integers)"
            )
        if isinstance(value, str) and not (value.isascii() and value.isdigit()):
            raise ValueError(f"should be the ad's id, digits only, got {show_value(value)}")
        return value

    @model_validator(mode="after")
    def _selector(self) -> AdConfig:
        market = {"asset": self.asset, "fiat": self.fiat, "side": self.side}
        given = [k for k, v in market.items() if v is not None]
        if self.adv_no is not None and given:
            raise FieldProblem(
                "adv_no", f"give either adv_no or asset + fiat + side, not both ({', '.join(given)} set)"
            )
        if self.adv_no is None and not given:
            raise FieldProblem("adv_no", "missing: give the ad's adv_no, or asset + fiat + side")
        if self.adv_no is None and len(given) < 3:
            missing = [k for k in market if k not in given]
            raise FieldProblem(
                missing[0], f"missing: asset, fiat and side go together ({', '.join(missing)} not set)"
            )
        self._side_limit()
        return self

    def _side_limit(self) -> None:
        """The bound that beating competitors runs into must be set when the side is known."""
        if self.side is None or self.side.limit(self.guards.floor, self.guards.ceiling) is not None:
            return
        direction = "down" if self.side is Side.SELL else "up"
        raise FieldProblem(
            ("guards", self.side.limit_name),
            f"required for a {self.side} ad: competing moves its price {direction}, "
            f"and the {self.side.limit_name} is what stops it",
        )

    @property
    def selector(self) -> str:
        """How the ad is found: 'adv_no 123...' or 'USDT/RUB SELL'."""
        if self.adv_no is not None:
            return f"adv_no {self.adv_no}"
        return f"{self.asset}/{self.fiat} {self.side}"

    @property
    def label(self) -> str:
        """The name used in logs: `name`, else the selector."""
        return self.name or self.selector

    @property
    def search_trade_type(self) -> Side | None:
        """The tradeType that finds this ad's competitors (the taker's side), when the side is known."""
        if self.side is None:
            return None
        return Side.BUY if self.side is Side.SELL else Side.SELL


def check_template(text: str) -> str:
    """`text` as a chat template, or ValueError naming the unknown field or failing spec."""
    if not text.strip():
        raise ValueError("empty message: leave `chat` out to send nothing")
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc}; write {{{{ and }}}} for literal braces") from None
    for _literal, field, spec, conversion in parts:
        if field is not None:
            _check_field(field, spec or "", conversion)
    rendered = text.format_map(TEMPLATE_SAMPLE)
    if len(rendered) > CHAT_MAX:
        raise ValueError(f"the message is {len(rendered)} characters with sample values; "
                         f"at most {CHAT_MAX} are sent in one chat message")
    return text


def _check_spec_size(field: str, spec: str) -> None:
    """Refuse a width or precision that would allocate a huge string (before formatting)."""
    for number in re.findall(r"\d+", spec):
        if len(number) > 3 or int(number) > SPEC_MAX:
            raise ValueError(f"{{{field}:{spec}}}: width or precision {number[:12]} is over "
                             f"{SPEC_MAX}")


def _check_field(field: str, spec: str, conversion: str | None) -> None:
    allowed = ", ".join(TEMPLATE_FIELDS)
    if field not in TEMPLATE_SAMPLE:
        what = "a field name" if not field else f"unknown field '{field}'"
        raise ValueError(f"{{{field}}}: {what} (allowed: {allowed})")
    if "{" in spec:
        raise ValueError(f"{{{field}}}: nested fields in a format spec are not allowed")
    if conversion not in (None, "r", "s", "a"):
        raise ValueError(f"{{{field}}}: unknown conversion '!{conversion}' (use !s, !r or !a)")
    _check_spec_size(field, spec)
    value = TEMPLATE_SAMPLE[field]
    if conversion is not None:
        convert: dict[str, Callable[[object], str]] = {"r": repr, "s": str, "a": ascii}
        value = convert[conversion](value)
    try:
        format(value, spec)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{{{field}:{spec}}}: bad format spec: {exc}") from None


Template = Annotated[str, AfterValidator(check_template)]


class SideReaction(_Table):
    """`[orders.on.<status>.sell]` / `.buy`: what differs for orders on that side (yours).

    A merchant who sells asks the buyer to pay; one who buys pays: one greeting
    cannot fit both. A key left out here is taken from `[orders.on.<status>]`.
    """

    chat: Template | None = None
    notify: StrictBool | None = None


class Reaction(_Table):
    """`[orders.on.<status>]`: a chat message template and/or a notification; empty = nothing."""

    chat: Template | None = None
    notify: StrictBool = False
    sell: SideReaction | None = None
    buy: SideReaction | None = None

    def for_side(self, side: str | None) -> Reaction:
        """The reaction to an order where your side is `side`: its side table over the common keys."""
        own = {"SELL": self.sell, "BUY": self.buy}.get((side or "").upper())
        if own is None:
            return self
        return self.model_copy(update={
            "chat": self.chat if own.chat is None else own.chat,
            "notify": self.notify if own.notify is None else own.notify,
            "sell": None, "buy": None})


class Reactions(_Table):
    """`[orders.on]`: one optional reaction per order status."""

    unknown_word: ClassVar[str] = "status"

    new: Reaction | None = None
    buyer_paid: Reaction | None = None
    completed: Reaction | None = None
    cancelled: Reaction | None = None
    appeal: Reaction | None = None
    stuck: Reaction | None = None

    def items(self) -> list[tuple[str, Reaction]]:
        """(status, reaction) for every configured status, in ORDER_STATUSES order."""
        found = ((s, getattr(self, s)) for s in ORDER_STATUSES)
        return [(s, r) for s, r in found if r is not None]


def default_reactions() -> Reactions:
    """Without an `[orders.on]` table: notify when paid, on appeal and when stuck; no chat."""
    alert = Reaction(notify=True)
    return Reactions(buyer_paid=alert, appeal=alert, stuck=alert)


class OrdersConfig(_Table):
    """`[orders]`: the order desk."""

    stuck_after_minutes: StrictInt = Field(15, ge=1, le=7 * 24 * 60)
    on: Reactions = Field(default_factory=default_reactions)


class ChatConfig(_Table):
    """`[chat]`: the outbox of messages to counterparties."""

    outbox_expiry_minutes: StrictInt = Field(30, ge=1, le=24 * 60)


class NotifyConfig(_Table):
    """`[notify]`: notification channels and their limits (the log is always one)."""

    dedupe_minutes: StrictInt = Field(10, ge=0, le=24 * 60)
    max_per_hour: StrictInt = Field(30, ge=1, le=3600)
    webhook_url: str = ""
    telegram_chat_id: str = ""

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"should be an http:// or https:// URL, got {show_value(value)}")
        return value

    @field_validator("telegram_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # chat ids are small integers: a TOML integer is fine
        if isinstance(value, str) and value and not (value.lstrip("-").isdigit() or value.startswith("@")):
            raise ValueError(f"should be a numeric chat id or an @channel name, got {show_value(value)}")
        return value


class WebConfig(_Table):
    """`[web]`: the health and metrics server."""

    host: str = Field("127.0.0.1", min_length=1)
    port: StrictInt = Field(8080, ge=1, le=65535)
    enabled: StrictBool = True


class RecordingConfig(_Table):
    """`[recording]`: the market each decision saw, kept for `export` and `backtest`."""

    enabled: StrictBool = True
    retention_days: StrictInt = Field(14, ge=1, le=3650)
    max_mb: StrictInt = Field(256, ge=1, le=1_000_000)
TELEGRAM_API_URL = "https://api.telegram.org"


class TelegramConfig(_Table):
    """`[telegram]`: the two-way console (bot.console). The token is P2PBOT_TELEGRAM_TOKEN."""

    enabled: StrictBool = False
    allowed_chat_ids: tuple[StrictInt, ...] = ()  # the only chats whose commands are obeyed
    api_url: str = TELEGRAM_API_URL  # the Bot API's address (tests point it at a local fake)
    poll_seconds: StrictInt = Field(25, ge=1, le=50)  # how long one getUpdates call waits
    queue_size: StrictInt = Field(100, ge=1, le=10_000)  # answers waiting to go; more are dropped

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"should be an http:// or https:// URL, got {show_value(value)}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _allow_list(self) -> TelegramConfig:
        if self.enabled and not self.allowed_chat_ids:
            raise FieldProblem("allowed_chat_ids", "set the chat ids allowed to command the bot "
                                                   "(docs/console.md says how to find yours)")
        return self


class ChatSlaConfig(_Table):
    """`[alerts.chat_sla]`: minutes a counterparty's message may wait unanswered, per order
    status, before an alert (0: no alert for that status)."""

    trading: StrictInt = Field(10, ge=0, le=24 * 60)
    paid: StrictInt = Field(3, ge=0, le=24 * 60)
    appeal: StrictInt = Field(10, ge=0, le=24 * 60)


class AlertsConfig(_Table):
    """`[alerts]`: alerts for paid, appeal and stuck orders and unanswered chats repeat every
    `repeat_minutes` until acknowledged (0: never repeated)."""

    repeat_minutes: StrictInt = Field(15, ge=0, le=24 * 60)
    chat_sla: ChatSlaConfig = Field(default_factory=ChatSlaConfig)


class InventoryConfig(_Table):
    """`[inventory]`: an alert when an ad's available amount falls toward its minimum order
    (below `alert_orders` x the minimum single order; 0 switches the alert off).

    With `refill = true` (a write: off by default), an ad named in `[inventory.targets]`
    (by its name or adv_no, amount in the ad's asset) whose available amount falls below
    `refill_below` x its target is brought back to the target from the funding wallet.
    """

    alert_orders: Decimal = Field(Decimal(3), ge=0, le=1000, allow_inf_nan=False)
    refill: StrictBool = False
    refill_below: Decimal = Field(Decimal("0.5"), gt=0, le=1, allow_inf_nan=False)
    targets: dict[str, Price] = Field(default_factory=dict)
class DeskPeer(_Table):
    """One `[[desk.peers]]` entry: another account's web server, and its bearer token's file."""

    url: str = Field(min_length=1)
    token_file: str | None = Field(None, min_length=1)  # mode 600, read at each desk refresh
    name: str = Field("", max_length=64)  # the account's name on the desk (default: its own)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError(f"should be an instance's http:// or https:// address, got "
                             f"{show_value(value)}")
        return value.rstrip("/")


class DeskConfig(_Table):
    """`[desk]`: the desk page (/desk) of this instance shows it and its peers in one table."""

    name: str = Field("", max_length=64)  # this account's name there (default: the config's folder)
    peers: tuple[DeskPeer, ...] = ()
    timeout: Annotated[float, BeforeValidator(_number), Field(gt=0, le=60)] = 5.0


class AppConfig(_Table):
    """The whole file."""

    unknown_word: ClassVar[str] = "table"

    bot: BotConfig = Field(default_factory=BotConfig)
    capabilities: CapabilitiesConfig = Field(default_factory=CapabilitiesConfig)
    cadence: CadenceConfig = Field(default_factory=CadenceConfig)
    ads: tuple[AdConfig, ...] = ()
    orders: OrdersConfig = Field(default_factory=OrdersConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    schedule: ScheduleConfig | None = None  # when the ads are open (config/schedule.py)

    @model_validator(mode="after")
    def _ad_schedules_have_hours(self) -> AppConfig:
        for i, ad in enumerate(self.ads):
            if ad.schedule is not None and ad.schedule.windows is None and self.schedule is None:
                raise FieldProblem(("ads", i, "schedule", "windows"),
                                   "missing: this ad's schedule has no hours, and there is no "
                                   "[schedule] table to take them from")
        return self
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    inventory: InventoryConfig = Field(default_factory=InventoryConfig)

    def band(self) -> Band:
        """The market cadence band: `[cadence]`, its slow end `[bot] market_interval` if unset."""
        c = self.cadence
        if "cadence" not in self.model_fields_set and "market_interval" in self.bot.model_fields_set:
            fixed = self.bot.market_interval  # a file from before the band: its interval, fixed
            return Band(fast=fixed, slow=fixed, market_share=c.market_share, calm=c.calm)
        slow = c.slow if c.slow is not None else self.bot.market_interval
        fast = c.fast if c.fast is not None else min(1.0, slow)
        return Band(fast=fast, slow=slow, market_share=c.market_share, calm=c.calm)

    @model_validator(mode="after")
    def _fast_within_slow(self) -> AppConfig:
        band = self.band()
        if band.fast > band.slow:
            where = "slow" if self.cadence.slow is not None else "[bot] market_interval"
            raise FieldProblem(("cadence", "fast"), f"must not exceed the slow end ({where} = "
                                                    f"{band.slow:g} s)")
        return self
    desk: DeskConfig = Field(default_factory=DeskConfig)

    @model_validator(mode="after")
    def _distinct_ads(self) -> AppConfig:
        seen: dict[tuple[str, str], int] = {}
        for i, ad in enumerate(self.ads):
            keys = [("selector", ad.selector, "adv_no" if ad.adv_no else "side")]
            keys += [("name", ad.name, "name")] if ad.name else []
            for kind, value, key in keys:
                if (kind, value) in seen:
                    raise FieldProblem(
                        ("ads", i, key), f"same {kind} as [[ads]] #{seen[kind, value] + 1} ({value})"
                    )
                seen[kind, value] = i
        return self

    @model_validator(mode="after")
    def _inventory_targets(self) -> AppConfig:
        known = {n for ad in self.ads for n in (ad.name, ad.adv_no) if n}
        for name in self.inventory.targets:
            if name not in known:
                raise FieldProblem(("inventory", "targets", name),
                                   "no [[ads]] has this name or adv_no")
        return self
