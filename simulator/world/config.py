"""The scenario's [world] table, validated: every key, its default, and what it does."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_PAY = ["Tinkoff", "SBP"]


class _Strict(BaseModel):
    """Unknown keys are errors that name the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketConfig(_Strict):
    """One [[world.markets]] entry: the competitors and reference price of an asset/fiat pair.

    asset, fiat: the pair ("USDT", "RUB").
    reference: starting reference price (string decimal).
    volatility: relative stdev of the reference per simulated minute (random walk; 0 = still).
    competitors: competitor ads per side (advertisers' SELL ads and BUY ads), bots and decoys included.
    bots: how many of them are repricing bots (undercut the best ad, never past their floor).
    bot_reaction_seconds: simulated seconds a bot takes to answer a better price.
    bot_floor: [low, high] relative distance of a bot's floor from the reference (a SELL bot
        never goes below reference*(1+floor), a BUY bot never above reference*(1-floor)).
    decoys: how many ads sit at an attractive price with a tiny max limit or tiny amount.
    spread: [low, high] relative distance of ordinary competitors from the reference.
    churn_per_hour: ordinary ads replaced by new advertisers per side per simulated hour.
    price_scale: decimals of a price in this fiat.
    pay_methods: identifiers competitors draw from (default: a table per fiat).
    rival_bots: fast repricing bots added to the competitors (per side, drawn from their own
        random stream, so the rest of the market is the same with or without them): they
        undercut the best other ad by one tick within `rival_seconds`.
    mirror_bots: bots added the same way that mirror the merchant's own online ad
        of their side one tick better (SELL: one tick below it), within `rival_seconds`; with
        no own ad online they sit at their markup. Both kinds never pass their floor
        (`bot_floor`) and answer each move anew, so a bot war with them can go on forever.
    rival_seconds: [low, high] simulated seconds a rival or mirror bot takes to answer
        (drawn per answer; Binance desks see 1 to 3 s).
    reference_pay_type_fails: getReferencePrice with a `payType` answers a business error
        (code 20001 here; Binance's code is unknown) while the same call without it works.
    """

    asset: str = "USDT"
    fiat: str = "RUB"
    reference: Decimal = Decimal("92.50")
    volatility: Decimal = Decimal("0.0005")
    competitors: int = Field(20, ge=0, le=200)
    bots: int = Field(3, ge=0)
    bot_reaction_seconds: int = Field(5, ge=1)
    bot_floor: tuple[Decimal, Decimal] = (Decimal("0.0005"), Decimal("0.004"))
    decoys: int = Field(2, ge=0)
    spread: tuple[Decimal, Decimal] = (Decimal("0.001"), Decimal("0.02"))
    churn_per_hour: Decimal = Field(Decimal("6"), ge=0)
    price_scale: int = Field(2, ge=0, le=8)
    pay_methods: list[str] | None = None
    reference_pay_type_fails: bool = False
    rival_bots: int = Field(0, ge=0)
    mirror_bots: int = Field(0, ge=0)
    rival_seconds: tuple[int, int] = (1, 3)

    @model_validator(mode="after")
    def _check(self) -> MarketConfig:
        if self.bots + self.decoys > self.competitors:
            raise ValueError("bots + decoys must not exceed competitors")
        if self.rival_bots + self.mirror_bots > 20:
            raise ValueError("rival_bots + mirror_bots must not exceed 20")
        if not 1 <= self.rival_seconds[0] <= self.rival_seconds[1]:
            raise ValueError("rival_seconds must be [low, high] with 1 <= low <= high")
        if self.reference <= 0:
            raise ValueError("reference must be positive")
        if self.volatility < 0:
            raise ValueError("volatility must not be negative")
        for name in ("bot_floor", "spread"):
            low, high = getattr(self, name)
            if not 0 <= low <= high < 1:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high < 1")
        return self


class OwnAdConfig(_Strict):
    """One [[world.own_ads]] entry: an ad of the merchant.

    asset, fiat, side: the market and the merchant's side ("SELL": the merchant sells the asset).
    price_type: "fixed" (needs `price`) or "floating" (needs `ratio`, percent of the reference).
    min, max: single-order limits in fiat; surplus: amount of the asset left to trade.
    pay_methods: payment method identifiers.
    adv_no: a fixed advNo (19-20 digits); drawn from the seed when absent.
    status: 1 online, 3 offline.
    classify: "mass" or "profession".
    pay_time_limit_minutes: the time the buyer has to pay.
    remarks, auto_reply: the ad's texts (auto_reply is sent to the chat when an order opens).
    """

    asset: str = "USDT"
    fiat: str = "RUB"
    side: Literal["BUY", "SELL"]
    price_type: Literal["fixed", "floating"] = "fixed"
    price: Decimal | None = None
    ratio: Decimal | None = None
    min: Decimal = Decimal("1000")
    max: Decimal = Decimal("50000")
    surplus: Decimal = Decimal("1500")
    pay_methods: list[str] = Field(default_factory=lambda: list(DEFAULT_PAY))
    adv_no: str | None = Field(None, pattern=r"^[0-9]{19,20}$")
    status: Literal[1, 3] = 1
    classify: Literal["mass", "profession"] = "mass"
    pay_time_limit_minutes: int = Field(15, ge=1)
    remarks: str = ""
    auto_reply: str = ""

    @model_validator(mode="after")
    def _check(self) -> OwnAdConfig:
        if self.price_type == "fixed" and (self.price is None or self.ratio is not None):
            raise ValueError("a fixed ad takes `price` and no `ratio`")
        if self.price_type == "floating" and (self.ratio is None or self.price is not None):
            raise ValueError("a floating ad takes `ratio` and no `price`")
        if not 0 < self.min <= self.max:
            raise ValueError("need 0 < min <= max")
        if self.surplus < 0:
            raise ValueError("surplus must not be negative")
        return self


class OrdersConfig(_Strict):
    """[world.orders]: how orders arrive on online own ads and walk their statuses.

    rate_per_hour: order arrival rate (Poisson) for a rank-1 ad.
    rank_decay: rate multiplier per rank further down (rate * decay**(rank-1)).
    pay_seconds: [low, high] time until the paying side marks the order paid (1 -> 2).
    release_seconds: [low, high] time from paid to completed (2 -> 4).
    cancel_probability: share of orders the buyer cancels while trading (1 -> 6).
    timeout_probability: share nobody pays: cancelled by the system at notifyPayEndTime (1 -> 7).
    appeal_probability: share of paid orders that go to appeal (2 -> 3 -> 4).
    appeal_seconds: [low, high] time an appeal takes to resolve (3 -> 4).
    commission_rate: the maker fee, a fraction of the amount.
    restock: refill an ad's surplus to its initial amount when it can no longer fill its minimum.
    odd_status_probability: share of paid orders that pass through a status this page of the
        API does not list before they complete (2 -> odd -> 4), as Binance's sister venue
        documents (3 releasing, 5 appeal); it lasts `release_seconds`, and no system message
        announces it.
    odd_statuses: the statuses drawn from (not one of the known 1, 2, 3, 4, 6, 7).
    history_window_required: listUserOrderHistory answers -1102 unless both startTimestamp and
        endTimestamp are sent (a fixed window; without an end the list is "until now" and moves
        between pages).
    """

    rate_per_hour: Decimal = Field(Decimal("6"), ge=0)
    rank_decay: Decimal = Field(Decimal("0.5"), ge=0, le=1)
    pay_seconds: tuple[int, int] = (60, 600)
    release_seconds: tuple[int, int] = (60, 600)
    cancel_probability: Decimal = Field(Decimal("0.1"), ge=0, le=1)
    timeout_probability: Decimal = Field(Decimal("0.05"), ge=0, le=1)
    appeal_probability: Decimal = Field(Decimal("0.05"), ge=0, le=1)
    appeal_seconds: tuple[int, int] = (600, 1800)
    commission_rate: Decimal = Field(Decimal("0.0016"), ge=0, lt=1)
    restock: bool = True
    odd_status_probability: Decimal = Field(Decimal("0"), ge=0, le=1)
    odd_statuses: list[int] = Field(default_factory=lambda: [5], min_length=1)
    history_window_required: bool = False

    @model_validator(mode="after")
    def _check(self) -> OrdersConfig:
        known = [s for s in self.odd_statuses if s in (1, 2, 3, 4, 6, 7) or s < 0]
        if known:
            raise ValueError(f"odd_statuses must be statuses the API does not list, not {known}")
        for name in ("pay_seconds", "release_seconds", "appeal_seconds"):
            low, high = getattr(self, name)
            if not 1 <= low <= high:
                raise ValueError(f"{name} must be [low, high] with 1 <= low <= high")
        if self.cancel_probability + self.timeout_probability > 1:
            raise ValueError("cancel_probability + timeout_probability must not exceed 1")
        return self


class ChatConfig(_Strict):
    """[world.chat]: credentials, the websocket and the counterparties' messages.

    credential_ttl_seconds: simulated lifetime of a chat credential.
    single_use: a credential opens one connection only.
    refuse_if_query: a credential fetched with extra query parameters is refused by the socket.
    send_form: which merchant send form is accepted: "self", "topic" or "both".
    firewall_words: case-insensitive substrings that draw an ILLEGAL_PARAM error frame.
    message_probability: chance a counterparty writes when an order opens and when it is paid.
    noise: send `statistics` frames and occasional `risk_alert` frames.
    statistics_seconds: simulated seconds between `statistics` frames.
    ping_interval_seconds: real seconds between the server's protocol pings (0 = none).
    echo_drop_probability: share of accepted merchant messages whose `self: true` echo never
        comes (the message is stored and in the REST history all the same; error frames are
        always sent). Binance does not always echo a send.
    """

    credential_ttl_seconds: int = Field(600, ge=1)
    single_use: bool = True
    refuse_if_query: bool = True
    send_form: Literal["self", "topic", "both"] = "both"
    firewall_words: list[str] = Field(
        default_factory=lambda: ["drop table", "union select", "<script", "t.me/"])
    message_probability: Decimal = Field(Decimal("0.5"), ge=0, le=1)
    noise: bool = True
    statistics_seconds: int = Field(60, ge=1)
    ping_interval_seconds: float = Field(30.0, ge=0)
    echo_drop_probability: Decimal = Field(Decimal("0"), ge=0, le=1)


class AccountConfig(_Strict):
    """[world.account]: the merchant as counterparties and the search results see it.

    nickname: the merchant's nickName; real_name: the KYC name in order details;
    user_no: a fixed userNo (`s` + 32 hex), drawn from the seed when absent.
    """

    nickname: str = "SimMerchant"
    real_name: str = "PETROV PETR"
    user_no: str | None = Field(None, pattern=r"^s[0-9a-f]{32}$")
    # the funding wallet (get-funding-asset): what an ad's initAmount can be raised from
    funding: dict[str, Decimal] = Field(default_factory=lambda: {"USDT": Decimal(10000)})


class RulesConfig(_Strict):
    """[world.rules]: the exchange's ad-update validation and when it hides ads.

    price_band: [low, high] percent of the reference a fixed price (or a floating ad's
        effective price) must stay within, else 187055 (price_band_mode "fixed").
    price_band_mode: "fixed" (the price_band percentages) or "moving": the band is
        reference x (1 -/+ w%) with a half-width w that random-walks inside `moving_band`
        every simulated minute, as the real exchange's band moves with the market.
    moving_band: [low, high] percent: the range the moving band's half-width wanders in.
    band_in_message: the 187055 message names the allowed minimum and maximum prices
        ("minimum 74.00, maximum 111.00"); false: it says only that the price is out of range.
    ratio_scale: decimals allowed in priceFloatingRatio, else -1100.
    hide_on_open_orders: an own ad is hidden from search while it has too many open orders
        (a BUY ad at 8, shown again at 4; a SELL ad at 50, shown again at 40), its rank kept.
    hide_below_min: an own ad is hidden from search while its available amount is below
        its minimum order; refilled, it comes back behind the ads at its price (rank lost).
    """

    price_band: tuple[Decimal, Decimal] = (Decimal("80"), Decimal("120"))
    price_band_mode: Literal["fixed", "moving"] = "fixed"
    moving_band: tuple[Decimal, Decimal] = (Decimal("3"), Decimal("10"))
    band_in_message: bool = True
    ratio_scale: int = Field(4, ge=0, le=8)
    hide_on_open_orders: bool = False
    hide_below_min: bool = False

    @model_validator(mode="after")
    def _check(self) -> RulesConfig:
        low, high = self.price_band
        if not 0 < low < 100 < high:
            raise ValueError("price_band must be [low, high] percent with 0 < low < 100 < high")
        low, high = self.moving_band
        if not 0 < low <= high < 100:
            raise ValueError("moving_band must be [low, high] percent with 0 < low <= high < 100")
        return self


class WorldConfig(_Strict):
    """The [world] table. Missing `markets` gives one calm USDT/RUB market around 92.50;
    missing `own_ads` gives a SELL fixed-price and a BUY floating-price ad on the first market.

    tick_seconds: real seconds between background advance() calls started by add_routes
        (0 = off, the default: run_simulator already ticks the world).
    """

    markets: list[MarketConfig] = Field(default_factory=lambda: [MarketConfig()], min_length=1)
    own_ads: list[OwnAdConfig] | None = None
    orders: OrdersConfig = Field(default_factory=OrdersConfig)
    chat: ChatConfig = Field(default_factory=ChatConfig)
    account: AccountConfig = Field(default_factory=AccountConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    tick_seconds: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> WorldConfig:
        pairs = [(m.asset, m.fiat) for m in self.markets]
        if len(set(pairs)) != len(pairs):
            raise ValueError("markets: each asset/fiat pair may appear once")
        for i, ad in enumerate(self.own_ads or []):
            if (ad.asset, ad.fiat) not in pairs:
                raise ValueError(f"own_ads[{i}]: no [[world.markets]] entry for {ad.asset}/{ad.fiat}")
        return self

    def resolved_own_ads(self) -> list[OwnAdConfig]:
        """The own ads, or the two default ads on the first market when none were given."""
        if self.own_ads is not None:
            return list(self.own_ads)
        first = self.markets[0]
        sell = (first.reference * Decimal("1.0097")).quantize(Decimal(1).scaleb(-first.price_scale))
        return [
            OwnAdConfig(asset=first.asset, fiat=first.fiat, side="SELL", price_type="fixed", price=sell),
            OwnAdConfig(asset=first.asset, fiat=first.fiat, side="BUY", price_type="floating",
                        ratio=Decimal("99.20")),
        ]
