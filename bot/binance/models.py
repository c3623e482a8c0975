"""Typed views of what the exchange answers: lenient in what they accept, exact in what they keep.

Unknown fields are kept (`extra="allow"`), attributes are snake_case with the
exchange's camelCase names as aliases, and a missing or mistyped field becomes a
`BadResponse` that names the endpoint and the field (see `parse`).

Numbers: the client decodes JSON with `parse_float=Decimal` (bot.binance.errors),
so a JSON number such as 92.51 reaches these models as `Decimal("92.51")`, exact
to the last digit. Strings are parsed with `Decimal(text)`. A float handed in by
other code is read through its shortest repr (`92.51`, never `92.5099999...`).
Ids are always `str`: a JSON integer id becomes its exact digit string.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import IntEnum
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
)

from bot.binance.errors import BadResponse

T = TypeVar("T")

# --- field types -------------------------------------------------------------------


def _to_decimal(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("expected a decimal number, got a boolean")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 92.51 stays 92.51
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError("expected a decimal number") from None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise ValueError("expected a decimal number")
    if not value.is_finite():
        raise ValueError("expected a finite decimal number")
    return value


def _to_id(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        # a float id may already have lost digits: refuse rather than guess
        raise ValueError("an id must be a string or an integer")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("an id must be a string or an integer")
        return format(value.to_integral_value(), "f")
    if isinstance(value, str):
        return value.strip()
    raise ValueError("an id must be a string or an integer")


Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
OptDec = Annotated[Decimal | None, BeforeValidator(_to_decimal)]
Id = Annotated[str, BeforeValidator(_to_id)]
OptId = Annotated[str | None, BeforeValidator(_to_id)]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Model(BaseModel):
    """Base of every response model: camelCase aliases, unknown fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=_camel)


# --- enums -------------------------------------------------------------------------


class OrderStatus(IntEnum):
    """An order's status as the list and detail endpoints give it (there is no 5)."""

    TRADING = 1
    BUYER_PAYED = 2
    IN_APPEAL = 3
    COMPLETED = 4
    CANCELLED = 6
    CANCELLED_BY_SYSTEM = 7

    @property
    def is_final(self) -> bool:
        """True for completed and cancelled orders: nothing more happens to them."""
        return self in _FINAL

    @classmethod
    def from_history(cls, text: str) -> OrderStatus | None:
        """The status for a history row's string (`TRADING`, `PENDING`, ...), or None if unknown."""
        return HISTORY_STATUS.get(text.strip().upper())

    @classmethod
    def from_int(cls, value: int) -> OrderStatus | None:
        """The status for a list/detail int, or None for a value this bot does not know."""
        try:
            return cls(value)
        except ValueError:
            return None


_FINAL = frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.CANCELLED_BY_SYSTEM})

HISTORY_STATUS: dict[str, OrderStatus] = {
    "TRADING": OrderStatus.TRADING,
    "PENDING": OrderStatus.TRADING,
    "BUYER_PAYED": OrderStatus.BUYER_PAYED,
    "BUYER_PAID": OrderStatus.BUYER_PAYED,
    "DISTRIBUTING": OrderStatus.BUYER_PAYED,
    "IN_APPEAL": OrderStatus.IN_APPEAL,
    "APPEALING": OrderStatus.IN_APPEAL,
    "COMPLETED": OrderStatus.COMPLETED,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCELLED_BY_SYSTEM": OrderStatus.CANCELLED_BY_SYSTEM,
}


class AdStatus(IntEnum):
    """An ad's `advStatus`."""

    ONLINE = 1
    OFFLINE = 3
    CLOSED = 4


class PriceType(IntEnum):
    """An ad's `priceType`."""

    FIXED = 1
    FLOATING = 2


# --- ads and the market -----------------------------------------------------------


class TradeMethod(Model):
    """A payment method of an ad; `identifier` is its key."""

    pay_id: OptId = None
    identifier: str | None = None
    trade_method_name: str | None = None


class Ad(Model):
    """An ad: one of the merchant's own, or a competitor's from search (`adv`)."""

    adv_no: Id
    price: Dec
    classify: str | None = None
    trade_type: str | None = None
    asset: str | None = None
    fiat_unit: str | None = None
    fiat_symbol: str | None = None
    adv_status: int | None = None
    price_type: int | None = None
    price_floating_ratio: OptDec = None
    init_amount: OptDec = None
    surplus_amount: OptDec = None
    tradable_quantity: OptDec = None
    min_single_trans_amount: OptDec = None
    max_single_trans_amount: OptDec = None
    dynamic_max_single_trans_amount: OptDec = None
    pay_time_limit: int | None = None
    trade_methods: list[TradeMethod] = Field(default_factory=list)
    remarks: str | None = None
    auto_reply_msg: str | None = None
    create_time: int | None = None
    adv_update_time: int | None = None
    asset_scale: int | None = None
    fiat_scale: int | None = None
    price_scale: int | None = None
    offline_reason: str | None = None


class Advertiser(Model):
    """Who published a searched ad."""

    nick_name: str
    user_no: OptId = None
    user_type: str | None = None
    month_order_count: int | None = None
    month_finish_rate: OptDec = None
    order_count: int | None = None
    adv_confirm_time: int | None = None
    positive_rate: OptDec = None
    user_grade: int | None = None

    @property
    def is_merchant(self) -> bool:
        """True when the exchange labels the advertiser a merchant."""
        return (self.user_type or "").lower() == "merchant"


class SearchItem(Model):
    """One row of an ads search."""

    adv: Ad
    advertiser: Advertiser


class ReferencePrice(Model):
    """Binance's reference price of one asset in one fiat."""

    asset: str
    reference_price: Dec
    currency: str | None = None
    currency_symbol: str | None = None
    asset_scale: int | None = None
    currency_scale: int | None = None
    price_scale: int | None = None


class Categories(Model):
    """The ad categories (`classify`) open to the account."""

    adv_classifies: list[str] = Field(default_factory=list)


class AdStatusFailure(Model):
    """One ad that `updateStatus` did not change."""

    adv_no: OptId = None
    error_code: int | str | None = None
    error_msg: str | None = None


class StatusUpdate(Model):
    """The answer to `updateStatus`."""

    status: Any = None
    fail_list: list[AdStatusFailure] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no ad failed."""
        return not self.fail_list


# --- orders ------------------------------------------------------------------------


class OrderSummary(Model):
    """Counts of the merchant's open orders."""

    buyer_payed_count: int = 0
    in_appeal_count: int = 0
    in_process_count: int = 0
    trading_count: int = 0


class _OrderFields(Model):
    """What an order row and an order history row share."""

    order_number: Id
    amount: Dec
    total_price: Dec
    adv_no: OptId = None
    trade_type: str | None = None
    asset: str | None = None
    fiat: str | None = None
    fiat_symbol: str | None = None
    create_time: int | None = None
    commission: OptDec = None


class OrderRow(_OrderFields):
    """An order as `listOrders` gives it: no unit price (see `unit_price`)."""

    order_status: int
    notify_pay_end_time: int | None = None
    confirm_pay_end_time: int | None = None
    seller_nickname: str | None = None
    buyer_nickname: str | None = None
    chat_unread_count: int | None = None
    commission_rate: OptDec = None
    additional_kyc_verify: int | None = None

    @property
    def status(self) -> OrderStatus | None:
        """The status as an enum, or None for a value this bot does not know."""
        return OrderStatus.from_int(self.order_status)

    @property
    def unit_price(self) -> Decimal | None:
        """totalPrice / amount (fiat per unit of crypto), or None for a zero amount."""
        if not self.amount:
            return None
        return self.total_price / self.amount


class OrderDetail(OrderRow):
    """One order in full. The counterparty's real names stay out of repr (and so out of logs)."""

    price: OptDec = None
    buyer_name: str | None = Field(default=None, repr=False)
    seller_name: str | None = Field(default=None, repr=False)
    pay_type: str | None = None
    selected_pay_id: OptId = None
    pay_methods: list[dict[str, Any]] | None = None
    notify_pay_time: int | None = None
    confirm_pay_time: int | None = None
    remark: str | None = None
    taker_user_no: OptId = None

    @property
    def unit_price(self) -> Decimal | None:
        """The order's `price` when given, else totalPrice / amount."""
        return self.price if self.price is not None else super().unit_price


class HistoryRow(_OrderFields):
    """A row of `listUserOrderHistory`: the status is a string there."""

    order_status: str
    unit_price: OptDec = None
    counter_part_nick_name: str | None = None
    advertisement_role: str | None = None
    pay_method_name: str | None = None

    @property
    def status(self) -> OrderStatus | None:
        """The status as an enum (TRADING/PENDING -> TRADING, ...), or None if unknown."""
        return OrderStatus.from_history(self.order_status)


# --- chat --------------------------------------------------------------------------


class ChatCredential(Model):
    """The chat websocket credential. The token is a SecretStr; extras stay out of repr."""

    chat_wss_url: str
    listen_key: str = Field(repr=False)
    listen_token: SecretStr

    def __repr_args__(self) -> Any:
        # a field Binance adds later may be secret too: show only the declared ones
        return [(k, v) for k, v in super().__repr_args__() if k in type(self).model_fields]

    def websocket_url(self) -> str:
        """The URL to connect to. It holds the token: never log it."""
        token = self.listen_token.get_secret_value()
        return f"{self.chat_wss_url.rstrip('/')}/{self.listen_key}?token={token}&clientType=web"


class ChatMessage(Model):
    """One chat message (REST history or websocket frame)."""

    id: OptId = None
    uuid: str | None = None
    type: str | None = None
    content: str | None = None
    create_time: int | None = None
    order_no: OptId = None
    topic_id: OptId = None
    is_self: bool = Field(default=False, alias="self")
    status: str | None = None
    from_nick_name: str | None = None

    @property
    def order(self) -> str | None:
        """The order number the message belongs to (`orderNo` or `topicId`)."""
        return self.order_no or self.topic_id


# --- account and time --------------------------------------------------------------


class MerchantDetail(Model):
    """The merchant's card (`user/baseDetail`): `businessStatus` 1 open, 2 closed, 3 on a break."""

    business_status: int | None = None

    @property
    def state(self) -> str:
        """`open`, `closed`, `break`, or `unknown`."""
        return {1: "open", 2: "closed", 3: "break"}.get(self.business_status or 0, "unknown")


class FundingAsset(Model):
    """One asset of the funding wallet (`/sapi/v1/asset/get-funding-asset`): `free` is what
    an ad can be refilled from (docs/exchange.md §11.8)."""

    asset: str
    free: Decimal = Decimal(0)
    locked: OptDec = None
    freeze: OptDec = None


class KeyRestrictions(Model):
    """What the API key may do (`/sapi/v1/account/apiRestrictions`)."""

    ip_restrict: bool | None = None
    enable_withdrawals: bool | None = None
    enable_internal_transfer: bool | None = None
    permits_universal_transfer: bool | None = None
    enable_reading: bool | None = None
    enable_spot_and_margin_trading: bool | None = None
    enable_margin: bool | None = None
    enable_futures: bool | None = None
    enable_vanilla_options: bool | None = None
    create_time: int | None = None
    trading_authority_expiration_time: int | None = None


class ServerTime(Model):
    """The exchange's clock."""

    server_time: int


class Page(BaseModel, Generic[T]):
    """One page of a paged list and the exchange's `total` (None when not given)."""

    items: list[T]
    total: int | None = None


# --- parsing -----------------------------------------------------------------------


@lru_cache(maxsize=64)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


def describe(exc: ValidationError, where: str = "data") -> str:
    """A short text naming the first bad field (`data[3].adv.price: field required`); no values."""
    errors = exc.errors(include_input=False, include_url=False, include_context=False)
    first = errors[0]
    path = where + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {msg}{more}"


def parse(model: Any, data: Any, endpoint: str, *, where: str = "data") -> Any:
    """Validate `data` as `model` (a model class or a type such as list[Ad]) or raise BadResponse."""
    try:
        return _adapter(model).validate_python(data)
    except ValidationError as exc:
        # not chained: the ValidationError holds input values, and those may be secret
        raise BadResponse(describe(exc, where), endpoint=endpoint) from None
