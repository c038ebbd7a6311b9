"""What the API's requests carry, in one place: the body of each route that takes one (connect, suppliers,
product imports, export settings, sales tracking, receipts, builds) and the margin report's query, built on
the domain's types, and the bounds every figure and date in a request keeps to.

Bounds: a quantity has at most 12 digits before the point and 6 after it; a unit cost the same; a line
amount at most 12 digits and 2 decimal places (cents). A date is within ``DATES_BACK`` before today and
``DATES_AHEAD`` after it. Anything outside is refused field by field (400), never stored to fail at export.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from shared.dates import RecentDate, RecentDatetime
from shared.domain.catalog import ROLES, ExportMode, Role
from shared.domain.connections import ProviderName
from shared.domain.inventory import Component
from shared.domain.sales import MarginGroup, zone
from shared.errors import InvalidFields, query_field
from shared.model import Model
from shared.money import unsigned_zero

INTEGER_DIGITS = 12
QUANTITY_PLACES = 6
UNIT_COST_PLACES = 6
AMOUNT_PLACES = 2


def _decimal(places: int, *, positive: bool, what: str) -> Any:
    """A Decimal of at most ``INTEGER_DIGITS`` digits before the point and ``places`` after it, as a JSON
    number or string; its OpenAPI schema states the same bounds."""
    largest = Decimal(10**INTEGER_DIGITS) - Decimal(1).scaleb(-places)
    fraction = rf"(\.\d{{0,{places}}})?" if places else ""
    pattern = rf"^\d{{1,{INTEGER_DIGITS}}}{fraction}$"

    def schema(field: JsonDict) -> None:
        branches = field.get("anyOf")
        for branch in branches if isinstance(branches, list) else []:
            if isinstance(branch, dict) and branch.get("type") == "string":
                branch["pattern"] = pattern
                branch["maxLength"] = INTEGER_DIGITS + places + 1

    return Field(
        gt=0 if positive else None,
        ge=None if positive else 0,
        le=largest,
        max_digits=INTEGER_DIGITS + places,
        decimal_places=places,
        allow_inf_nan=False,
        description=(
            f"{what}: {'more than' if positive else 'at least'} 0, at most {INTEGER_DIGITS} digits before "
            f"the decimal point and {places} after it"
        ),
        json_schema_extra=schema,
    )


PLAIN_FIGURE = re.compile(r"[0-9]+(\.[0-9]*)?")  # ASCII digits: Python's \d (and Decimal) take any script's


def _plain_text(value: Any) -> Any:
    """A figure sent as text is written as its schema's pattern says: digits, maybe a point and decimals.
    Decimal itself would read "1e9", " 5 " or another script's digits ("١٢" as 12)."""
    if isinstance(value, str) and not PLAIN_FIGURE.fullmatch(value):
        raise ValueError("write it with the digits 0-9 and at most one decimal point, like 12.5")
    return value


# after the bounds, so that they stay in the decimal's own schema (and the OpenAPI document); it runs first
PLAIN = BeforeValidator(_plain_text)
UNSIGNED_ZERO = AfterValidator(unsigned_zero)  # -0.0 passes the bounds (it equals 0)
Quantity = Annotated[Decimal, _decimal(QUANTITY_PLACES, positive=True, what="a quantity"), PLAIN]
Rejected = Annotated[
    Decimal, _decimal(QUANTITY_PLACES, positive=False, what="a quantity"), PLAIN, UNSIGNED_ZERO
]
UnitCost = Annotated[
    Decimal, _decimal(UNIT_COST_PLACES, positive=False, what="a cost per unit"), PLAIN, UNSIGNED_ZERO
]
LineAmount = Annotated[
    Decimal, _decimal(AMOUNT_PLACES, positive=False, what="an amount"), PLAIN, UNSIGNED_ZERO
]
# kept for callers that name the old alias (a cost per unit)
Amount = UnitCost


LINE_LIMIT = Decimal(10**INTEGER_DIGITS)  # a line's value (a journal's amount) stays below this

RecordId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})  # control characters, line and paragraph separators


def _one_line(value: str) -> str:
    if any(unicodedata.category(c) in LINE_BREAKING for c in value):  # they reach the provider's documents
        raise ValueError("must be one line of text, without tabs or other control characters")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]  # text copied into a provider's document
ProductId = Annotated[str, Field(min_length=1, max_length=128)]
_INBOUND = ConfigDict(frozen=True, extra="forbid")


class ReceiptLineRequest(Model):
    """A received line: ``quantity`` arrived, QA rejected ``rejected`` of it; priced per unit or as a line."""

    model_config = _INBOUND
    product_id: ProductId
    quantity: Quantity
    rejected: Rejected = Decimal(0)
    unit_cost: UnitCost | None = None
    line_cost: LineAmount | None = None
    lot_code: OneLine = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _consistent(self) -> ReceiptLineRequest:
        if self.rejected > self.quantity:
            raise ValueError("rejected cannot exceed the quantity received")
        if (self.unit_cost is None) == (self.line_cost is None):
            raise ValueError("give either unit_cost or line_cost")
        if self.unit_cost is not None and self.quantity * self.unit_cost >= LINE_LIMIT:
            # the line's value is bounded as a line_cost is: it is what the journals post
            raise ValueError(
                f"quantity x unit_cost is {self.quantity * self.unit_cost:f}: a line's value has at most "
                f"{INTEGER_DIGITS} digits before the decimal point, as line_cost"
            )
        return self

    @property
    def accepted(self) -> Decimal:
        return self.quantity - self.rejected


class ReceiptRequest(Model):
    model_config = _INBOUND
    receipt_id: RecordId | None = (
        None  # the caller's own id makes a repeated POST safe (refused, not doubled)
    )
    supplier_id: OneLine = Field(default="", max_length=128)  # the provider's supplier id, when known
    supplier_email: OneLine = Field(default="", max_length=254)
    supplier_name: OneLine = Field(default="", max_length=255)
    received_at: RecentDatetime
    lines: list[ReceiptLineRequest] = Field(min_length=1, max_length=500)


class ComponentRequest(Component):
    """A build's component as a request names it: the domain's ``Component`` within a request's bounds."""

    model_config = _INBOUND
    product_id: ProductId
    quantity_per_unit: Quantity


class BuildRequest(Model):
    model_config = _INBOUND
    build_id: RecordId | None = None
    product_id: ProductId
    quantity: Quantity
    built_at: RecentDatetime
    lot_code: OneLine = Field(default="", max_length=64)
    components: list[ComponentRequest] = Field(
        default_factory=list, max_length=500
    )  # none: the product's BOM

    @field_validator("components")
    @classmethod
    def _distinct_components(
        cls, components: list[ComponentRequest], info: ValidationInfo
    ) -> list[ComponentRequest]:
        built = info.data.get("product_id")
        first: dict[str, int] = {}
        for index, component in enumerate(components):
            product = component.product_id
            if product == built:
                raise ValueError(f"component {index} is the product being built ({built}) itself")
            if product in first:
                raise ValueError(
                    f"component {index} repeats {product} (component {first[product]}); "
                    "give each component once, with its whole quantity per unit"
                )
            first[product] = index
        return components


# ---- connections, catalog and export settings --------------------------------------------------------------
class ConnectRequest(Model):
    model_config = ConfigDict(extra="forbid")
    switch_company: StrictBool = False  # JSON true or false: "yes", "1" or 1 is a 400 naming it


class ImportRequest(Model):
    model_config = ConfigDict(extra="forbid")
    provider: ProviderName
    # an item id is read as a DynamoDB key, which DynamoDB refuses past 1,024 bytes (QBO's ids are numbers,
    # Xero's are GUIDs)
    item_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(min_length=1, max_length=1000)


EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")  # one @, a dotted domain, no spaces


class SupplierRequest(Model):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    email: str = Field(default="", max_length=255)

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():  # the provider is sent the name without its spaces, and refuses an empty one
            raise ValueError("give the supplier a name, not only spaces")
        _one_line(value.strip())
        return value

    @field_validator("email")
    @classmethod
    def _address(cls, value: str) -> str:
        # ASCII only: Xero refuses an address with umlauts (spec Contact.EmailAddress: "umlauts not
        # supported"), after a create, a look-up and a second create have been spent on it
        if value and not (value.isascii() and EMAIL.fullmatch(value)):
            raise ValueError("give an email address like orders@example.com (no accented letters), or none")
        return value


class ExportAccounts(Model):
    """The provider account chosen for each posting role (``shared.domain.catalog.ROLES``)."""

    model_config = ConfigDict(extra="forbid")
    build_debit: str | None = None
    build_credit: str | None = None
    receiving_debit: str | None = None
    receiving_credit: str | None = None
    waste: str | None = None
    adjustment: str | None = None  # QBO inventory mode only
    cogs: str | None = None
    rounding: str | None = None  # optional: takes the cents rounding leaves
    subassembly: str | None = None  # optional: WIP account for sub-assemblies (else finished goods)

    def by_role(self) -> dict[Role, str | None]:
        return {role: getattr(self, role) for role in ROLES}


class ExportSettingsRequest(Model):
    model_config = ConfigDict(extra="forbid")
    mode: ExportMode = "journals"
    accounts: ExportAccounts


# ---- sales tracking and margins ------------------------------------------------------------------------
class TrackingRequest(Model):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool  # JSON true or false only
    start_date: RecentDate | None = None  # the first pull reads documents dated from here
    time_zone: str | None = None  # IANA; unset: the one already stored, else the provider's

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        # files of the host's zoneinfo directory that are no IANA zone: the host's own zone ("localtime"),
        # and the leap-second ("right/", which Python reads an hour off) and duplicate ("posix/") trees; and
        # tzdata's "Factory", a placeholder for a machine whose zone is not set (it reads as UTC)
        if value is not None and (
            value in ("localtime", "posixrules", "Factory") or value.startswith(("right/", "posix/"))
        ):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as America/New_York")
        return None if value is None else zone(value).key


class MarginQuery(Model):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    group: MarginGroup = "document"

    @model_validator(mode="after")
    def _in_order(self) -> MarginQuery:
        if self.start and self.end and self.start > self.end:
            problem = f"from ({self.start}) is after to ({self.end}): choose from on or before to"
            raise InvalidFields(problem, [{"field": query_field("from"), "problem": problem}])
        return self
