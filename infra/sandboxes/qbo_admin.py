"""Admin controls of the QBO sandbox: companies, users and records changed the way a user would in QuickBooks
(Python + HTTP)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from infra.sandboxes.common import json_body, json_response
from infra.sandboxes.qbo_books import (
    DEFAULT_ZONE,
    ENTITY_BY_SEGMENT,
    ENTITY_SEGMENTS,
    SALES_DOCS,
    TRANSACTIONS,
    AdminError,
    AdminNotFound,
    Company,
    QboBooks,
    QboFault,
    plain,
    wire,
)
from infra.sandboxes.qbo_oauth import QboOAuth, User

PLANS = ("Simple", "Essentials", "Plus", "Advanced")


def _check_zone(name: Any) -> None:
    """A company's time zone is an IANA name (QBO's company settings offer a list of them)."""
    try:
        ZoneInfo(str(name))
    except (ValueError, ZoneInfoNotFoundError):
        raise AdminError(f"time_zone {name!r} is not an IANA time zone") from None


class QboAdmin(QboOAuth, QboBooks):
    """Mixed into ``QboSandbox``: every change goes through the same rules and stamps as an API write."""

    # ---- admin: Python API ----------------------------------------------------------------------
    def company(self, realm_id: str) -> Company:
        try:
            return self.companies[realm_id]
        except KeyError:
            raise AdminNotFound(f"no company with realm id {realm_id}") from None

    @staticmethod
    def entity_name(entity: str) -> str:
        try:
            return ENTITY_BY_SEGMENT[entity.lower()]
        except KeyError:
            raise AdminError(f"unknown entity {entity!r}") from None

    def add_company(
        self,
        name: str,
        *,
        realm_id: str | None = None,
        country: str = "US",
        plan: str = "Plus",
        inventory_tracking: bool = True,
        closing_date: date | None = None,
        home_currency: str = "USD",
        time_zone: str = DEFAULT_ZONE,
    ) -> Company:
        if plan not in PLANS:
            raise AdminError(f"plan must be one of {PLANS}")
        _check_zone(time_zone)
        with self.lock:
            realm = realm_id or str(9130350000000000 + len(self.companies) + 101)
            if realm in self.companies:
                raise AdminError(f"realm {realm} already exists")
            company = Company(
                realm,
                name,
                country,
                plan,
                inventory_tracking,
                closing_date,
                home_currency,
                self.now(),
                time_zone,
            )
            self.companies[realm] = company
            return company

    def update_company(self, realm_id: str, **settings: Any) -> Company:
        """Changes closing_date, plan, country, inventory_tracking, name or time_zone (other keys are
        refused)."""
        allowed = {"closing_date", "plan", "country", "inventory_tracking", "name", "time_zone"}
        if set(settings) - allowed or settings.get("plan", "Plus") not in PLANS:
            raise AdminError(f"settings must be among {sorted(allowed)} with plan in {PLANS}")
        _check_zone(settings.get("time_zone", DEFAULT_ZONE))
        with self.lock:
            company = self.company(realm_id)
            for key, value in settings.items():
                setattr(company, key, value)
            return company

    def add_user(self, username: str, password: str, realm_ids: list[str]) -> User:
        with self.lock:
            for realm in realm_ids:
                self.company(realm)
            user = User(username, password, list(realm_ids))
            self.users[username] = user
            return user

    def create_record(self, realm_id: str, entity: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Seeds any entity the way QBO's UI would (Groups included); MetaData may be back-dated."""
        name = self.entity_name(entity)
        with self.lock:
            company = self.company(realm_id)
            body = plain(fields)
            metadata = body.pop("MetaData", None)
            try:
                record = self._validate(company, name, body)
            except QboFault as err:
                raise AdminError(err.detail) from err
            return self._insert(company, name, record, metadata)

    def get_record(self, realm_id: str, entity: str, record_id: str) -> dict[str, Any]:
        with self.lock:
            record = self.company(realm_id).find(self.entity_name(entity), record_id)
            if record is None:
                raise AdminNotFound(f"no {entity} {record_id} in {realm_id}")
            return record

    def list_records(self, realm_id: str, entity: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.company(realm_id).records[self.entity_name(entity)].values())

    def edit_record(
        self, realm_id: str, entity: str, record_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        name = self.entity_name(entity)
        with self.lock:
            company = self.company(realm_id)
            current = self.get_record(realm_id, name, record_id)
            if name in TRANSACTIONS and name not in SALES_DOCS:
                raise AdminError(f"{name} can be deleted, not edited")
            merged = {**copy.deepcopy(current), **plain(changes)}
            try:
                record = self._replace(company, current, self._validate(company, name, merged))
            except QboFault as err:
                raise AdminError(err.detail) from err
            if name in SALES_DOCS:
                self._restock(company, name, record)  # an edit moves the difference
            return record

    def void_record(self, realm_id: str, entity: str, record_id: str) -> dict[str, Any]:
        """Voids a sales document the way QBO shows it: kept, amounts and quantities 0, note prefixed."""
        name = self.entity_name(entity)
        if name not in SALES_DOCS:
            raise AdminError("only Invoice, SalesReceipt, CreditMemo and RefundReceipt can be voided")
        with self.lock:
            company = self.company(realm_id)
            record = self.get_record(realm_id, name, record_id)
            for line in record["Line"]:
                line["Amount"] = Decimal(0)
                details = [line.get("SalesItemLineDetail")]
                group = line.get("GroupLineDetail")
                if group:
                    group["Quantity"] = Decimal(0)
                    for component in group["Line"]:
                        component["Amount"] = Decimal(0)
                        details.append(component["SalesItemLineDetail"])
                for detail in filter(None, details):
                    detail["Qty"] = Decimal(0)
                    if "TaxInclusiveAmt" in detail:
                        detail["TaxInclusiveAmt"] = Decimal(0)
            note = record.get("PrivateNote", "")
            changes: dict[str, Any] = {
                "TotalAmt": Decimal(0),
                "LinkedTxn": [],
                "PrivateNote": f"Voided - {note}" if note else "Voided",
            }
            if "TxnTaxDetail" in record:
                changes["TxnTaxDetail"] = {**record["TxnTaxDetail"], "TotalTax": Decimal(0)}
            for key in ("Balance", "HomeTotalAmt", "RemainingCredit"):
                if key in record:
                    changes[key] = Decimal(0)
            self._touch(company, record, changes)
            self._restock(company, name, record)  # quantities 0: the stock it moved comes back
            return record

    def delete_record(self, realm_id: str, entity: str, record_id: str) -> None:
        """Deletes a transaction: gone from reads and queries, a Deleted entry in CDC for 30 days."""
        name = self.entity_name(entity)
        if name not in TRANSACTIONS:
            raise AdminError(f"{name} is a name list: make it inactive instead")
        with self.lock:
            company = self.company(realm_id)
            record = self.get_record(realm_id, name, record_id)
            if name == "InventoryAdjustment":
                self._reverse_stock(company, record["Id"])
            if name in SALES_DOCS:
                self._restock(company, name, {"Id": record["Id"], "Line": []})  # deleted: moves no stock
            del company.records[name][record["Id"]]
            company.tombstones.append((name, record["Id"], self.now()))

    # ---- admin: HTTP ----------------------------------------------------------------------------
    def admin_endpoints(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        company = r"/_admin/companies/(?P<realm>[^/]+)"
        entity = rf"(?P<segment>{ENTITY_SEGMENTS})"
        return [
            ("POST", "/_admin/companies", self._admin(self._admin_add_company, 201)),
            (
                "GET",
                "/_admin/companies",
                self._admin(lambda request: [c.summary() for c in self.companies.values()]),
            ),
            ("POST", "/_admin/users", self._admin(self._admin_add_user, 201)),
            (
                "POST",
                company + "/revoke",
                self._admin(
                    lambda request, realm: {"revoked_grants": self.revoke_realm(self.company(realm).realm_id)}
                ),
            ),
            ("POST", company + "/settings", self._admin(self._admin_settings)),
            (
                "POST",
                company + "/" + entity,
                self._admin(
                    lambda request, realm, segment: self.create_record(
                        realm, segment, json_body(request) or {}
                    ),
                    201,
                ),
            ),
            (
                "GET",
                company + "/" + entity,
                self._admin(lambda request, realm, segment: {"items": self.list_records(realm, segment)}),
            ),
            (
                "GET",
                company + "/" + entity + r"/(?P<record_id>[^/]+)",
                self._admin(
                    lambda request, realm, segment, record_id: self.get_record(realm, segment, record_id)
                ),
            ),
            (
                "POST",
                company + "/" + entity + r"/(?P<record_id>[^/]+)/(?P<action>edit|void|delete)",
                self._admin(self._admin_change),
            ),
        ]

    def _admin(self, handler: Callable[..., Any], status: int = 200) -> Callable[..., httpx.Response]:
        def run(request: httpx.Request, **groups: str) -> httpx.Response:
            try:
                return json_response(status, wire(handler(request, **groups)))
            except AdminError as err:
                return json_response(404 if isinstance(err, AdminNotFound) else 400, {"error": str(err)})
            except (KeyError, TypeError, ValueError) as err:
                return json_response(400, {"error": f"bad request: {err}"})

        return run

    @staticmethod
    def _settings(body: dict[str, Any]) -> dict[str, Any]:
        settings = dict(body)
        if settings.get("closing_date"):
            settings["closing_date"] = date.fromisoformat(settings["closing_date"])
        return settings

    def _admin_add_company(self, request: httpx.Request) -> dict[str, Any]:
        body = self._settings(json_body(request) or {})
        name = body.pop("name")
        return self.add_company(name, **body).summary()

    def _admin_settings(self, request: httpx.Request, realm: str) -> dict[str, Any]:
        return self.update_company(realm, **self._settings(json_body(request) or {})).summary()

    def _admin_add_user(self, request: httpx.Request) -> dict[str, Any]:
        body = json_body(request) or {}
        user = self.add_user(body["username"], body["password"], body["realm_ids"])
        return {"username": user.username, "realm_ids": user.realm_ids}

    def _admin_change(
        self, request: httpx.Request, realm: str, segment: str, record_id: str, action: str
    ) -> dict[str, Any]:
        if action == "edit":
            return self.edit_record(realm, segment, record_id, json_body(request) or {})
        if action == "void":
            return self.void_record(realm, segment, record_id)
        self.delete_record(realm, segment, record_id)
        return {"deleted": record_id}
