"""Admin controls of the Xero sandbox: seed and change data the way a user would in Xero (Python + HTTP)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx

from infra.sandboxes.common import Clock, json_body, json_response
from infra.sandboxes.xero_allocations import apply_allocation, check_allocations
from infra.sandboxes.xero_books import (
    DOCUMENT_TYPES,
    ID_FIELDS,
    Organisation,
    Record,
    after_store,
    build,
    parse_date,
    render,
    wire_default,
)
from infra.sandboxes.xero_oauth import Identity, User
from infra.sandboxes.xero_where import enum

COLLECTION_PATTERN = "(?P<collection>" + "|".join(ID_FIELDS) + ")"


class AdminError(ValueError):
    """A rejected admin request (HTTP 400 on the admin routes)."""


def admin_json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body, default=wire_default).encode(),
        headers={"content-type": "application/json"},
    )


def _as_date(value: date | str | None) -> date | None:
    return None if value in (None, "") else parse_date(value)


class XeroAdmin:
    """Mixed into ``XeroSandbox``; every change stamps UpdatedDateUTC from the sandbox clock."""

    organisations: dict[str, Organisation]
    identity: Identity
    lock: threading.RLock
    clock: Clock

    # ---- Python API -------------------------------------------------------------------------------
    def add_organisation(
        self,
        name: str,
        base_currency: str = "AUD",
        country: str = "AU",
        *,
        tenant_id: str | None = None,
        period_lock_date: date | str | None = None,
        end_of_year_lock_date: date | str | None = None,
    ) -> Organisation:
        with self.lock:
            tenant = (tenant_id or str(uuid.uuid4())).lower()
            org = self.organisations.get(tenant)
            if org is None:
                org = Organisation(tenant, name, base_currency.upper(), country.upper(), self.clock.now())
                self.organisations[tenant] = org
            org.name, org.base_currency, org.country = name, base_currency.upper(), country.upper()
            org.period_lock_date = _as_date(period_lock_date)
            org.end_of_year_lock_date = _as_date(end_of_year_lock_date)
            return org

    def set_lock_dates(
        self,
        tenant_id: str,
        *,
        period_lock_date: date | str | None = None,
        end_of_year_lock_date: date | str | None = None,
    ) -> Organisation:
        """Sets both lock dates; one left out (None) is cleared."""
        with self.lock:
            org = self._org(tenant_id)
            org.period_lock_date = _as_date(period_lock_date)
            org.end_of_year_lock_date = _as_date(end_of_year_lock_date)
            return org

    def set_financial_year_end(self, tenant_id: str, month: int, day: int) -> Organisation:
        """Moves the organisation's financial year end (Settings > Financial settings in Xero)."""
        with self.lock:
            org = self._org(tenant_id)
            org.financial_year_end = (month, day)
            return org

    def set_timezone(self, tenant_id: str, timezone: str) -> Organisation:
        """Moves the organisation to another time zone (Settings > Organisation details in Xero); a name
        outside the spec's ``TimeZone`` enum is refused, as Xero offers only those."""
        if timezone not in enum("TimeZone"):
            raise AdminError(f"'{timezone}' is not one of Xero's time zones (spec enum TimeZone)")
        with self.lock:
            org = self._org(tenant_id)
            org.timezone = timezone
            return org

    def add_user(self, username: str, password: str, tenant_ids: list[str]) -> User:
        with self.lock:
            tenants = [self._org(t).tenant_id for t in tenant_ids]
            existing = self.identity.users.get(username.lower())
            if existing is not None:
                existing.password, existing.tenant_ids = password, tenants
                return existing
            user = User(username, password, tenants)
            self.identity.users[username.lower()] = user
            return user

    def add_record(self, tenant_id: str, collection: str, data: Record) -> Record:
        """Seeds any collection as the Xero UI would; read-only fields (ids, IsSupplier, ...) may be set.
        A credit note's ``Allocations`` are made by the API's rules or refused (``_allocations_given``)."""
        return self._save(tenant_id, collection, None, data)

    def edit_record(self, tenant_id: str, collection: str, record_id: str, changes: Record) -> Record:
        return self._save(tenant_id, collection, record_id, changes)

    def void_record(self, tenant_id: str, collection: str, record_id: str) -> Record:
        if self._collection(collection) not in (*DOCUMENT_TYPES, "ManualJournals"):
            raise AdminError(f"{collection} cannot be voided")
        return self._save(tenant_id, collection, record_id, {"Status": "VOIDED"})

    def delete_record(self, tenant_id: str, collection: str, record_id: str) -> Record | None:
        """Documents become DELETED (drafts and submitted ones only, as in Xero: an approved one is voided,
        ``void_record``), contacts ARCHIVED; accounts and items are removed outright."""
        name = self._collection(collection)
        if name == "Contacts":
            return self._save(tenant_id, name, record_id, {"ContactStatus": "ARCHIVED"})
        if name in ("Accounts", "Items"):
            with self.lock:
                self._record(self._org(tenant_id), name, record_id)
                del self._org(tenant_id).records[name][record_id.lower()]
                return None
        return self._save(tenant_id, name, record_id, {"Status": "DELETED"})

    def list_records(self, tenant_id: str, collection: str) -> list[Record]:
        with self.lock:
            name = self._collection(collection)
            return [self._plain(name, r) for r in self._org(tenant_id).records[name].values()]

    def revoke_user_grants(self, username: str, client_id: str | None = None) -> int:
        """The user disconnects the app in Xero: its token sets are revoked and its connections removed."""
        with self.lock:
            user = self.identity.users.get(username.lower())
            if user is None:
                raise AdminError(f"unknown user {username}")
            return self.identity.revoke_user(user, client_id)

    def disconnect_organisation(self, tenant_id: str) -> int:
        """Removes every app connection to the org; grants left without connections are revoked."""
        with self.lock:
            tenant = self._org(tenant_id).tenant_id
            found = [c for c in self.identity.connections.values() if c.active and c.tenant_id == tenant]
            self.identity.disconnect(found)
            return len(found)

    def _save(self, tenant_id: str, collection: str, record_id: str | None, data: Record) -> Record:
        with self.lock:
            org = self._org(tenant_id)
            name = self._collection(collection)
            existing = self._record(org, name, record_id) if record_id else None
            data, wanted = self._allocations_given(name, data, existing)
            now = self.clock.now()
            outcome = build(org, name, data, now, existing=existing, trusted=True)
            if outcome.errors:
                raise AdminError("; ".join(outcome.errors))
            checked = check_allocations(org, outcome.record, wanted) if wanted else []
            if refused := [m for o in checked for m in o.errors]:
                raise AdminError("; ".join(refused))
            org.store(name, outcome.record)
            after_store(org, name, outcome.record)
            for allocation in checked:
                apply_allocation(org, outcome.record, allocation.record, now)
            return self._plain(name, outcome.record)

    @staticmethod
    def _allocations_given(name: str, data: Record, existing: Record | None) -> tuple[Record, list[Any]]:
        """The data less the allocations it names, and those to make. A credit note's ``Allocations`` are
        made by the API's rules (xero_allocations), as allocating it in Xero would; those it already has
        (by AllocationID, as ``list_records`` shows them) are kept. Anything else is refused, never dropped:
        an edit leaving out an allocation the note has (Xero removes one with DELETE
        /CreditNotes/{id}/Allocations/{AllocationID}, which the sandbox does not serve), and an invoice's
        ``CreditNotes`` naming a credit note not allocated to it (allocate from the credit note instead)."""
        had = existing or {}
        if name == "Invoices" and data.get("CreditNotes"):
            allocated = {c["CreditNoteID"].lower() for c in had.get("CreditNotes") or []}
            named = {str((c or {}).get("CreditNoteID") or "").lower() for c in data["CreditNotes"]}
            if not named <= allocated:
                raise AdminError(
                    "an invoice's CreditNotes come from allocating a credit note: give the credit note "
                    "Allocations instead"
                )
        if name != "CreditNotes" or "Allocations" not in data:
            return data, []
        given = data["Allocations"]
        if not isinstance(given, list):
            raise AdminError("Allocations must be a list")
        kept = {a["AllocationID"].lower() for a in had.get("Allocations") or []}
        named = {str(a.get("AllocationID") or "").lower() for a in given if isinstance(a, dict)}
        if missing := kept - named:
            raise AdminError(
                f"an edit cannot remove allocations ({', '.join(sorted(missing))}); send them all back"
            )
        wanted = [
            a for a in given if not (isinstance(a, dict) and str(a.get("AllocationID") or "").lower() in kept)
        ]
        return {k: v for k, v in data.items() if k != "Allocations"}, wanted

    def _org(self, tenant_id: str) -> Organisation:
        org = self.organisations.get(str(tenant_id).lower())
        if org is None:
            raise AdminError(f"unknown organisation {tenant_id}")
        return org

    @staticmethod
    def _collection(name: str) -> str:
        found = next((c for c in ID_FIELDS if c.lower() == name.lower()), None)
        if found is None:
            raise AdminError(f"unknown collection {name}; expected one of {', '.join(ID_FIELDS)}")
        return found

    @staticmethod
    def _record(org: Organisation, collection: str, record_id: str) -> Record:
        record = org.records[collection].get(record_id.lower())
        if record is None:
            raise AdminError(f"no {collection} record {record_id}")
        return record

    @staticmethod
    def _plain(collection: str, record: Record) -> Record:
        """A record exactly as the API would serialise it (JSON types only)."""
        plain: Record = json.loads(json.dumps(render(collection, record), default=wire_default))
        return plain

    # ---- HTTP routes ------------------------------------------------------------------------------
    def admin_endpoints(self) -> list[tuple[str, str, Callable[..., httpx.Response]]]:
        """(method, path pattern, handler) of the admin routes, for the sandbox to register."""
        org_path = "/_admin/organisations/(?P<tenant>[^/]+)"
        change = f"{org_path}/{COLLECTION_PATTERN}/(?P<record_id>[^/]+)/(?P<verb>edit|void|delete)"
        handlers: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("POST", "/_admin/organisations", self._http_add_org),
            ("GET", "/_admin/organisations", self._http_list_orgs),
            ("POST", "/_admin/users", self._http_add_user),
            ("POST", "/_admin/grants/revoke", self._http_revoke),
            ("POST", f"{org_path}/disconnect", self._http_disconnect),
            ("POST", f"{org_path}/lock-dates", self._http_lock_dates),
            ("POST", f"{org_path}/{COLLECTION_PATTERN}", self._http_add_record),
            ("GET", f"{org_path}/{COLLECTION_PATTERN}", self._http_list_records),
            ("POST", change, self._http_change_record),
        ]
        return [(method, pattern, self._admin(handler)) for method, pattern, handler in handlers]

    @staticmethod
    def _admin(handler: Callable[..., tuple[int, Any]]) -> Callable[..., httpx.Response]:
        def wrapped(request: httpx.Request, **groups: str) -> httpx.Response:
            try:
                body = json_body(request) if request.content else None
                status, answer = handler(body or {}, **groups)
            except (AdminError, KeyError, TypeError, ValueError) as err:
                return json_response(400, {"error": str(err)})
            return admin_json(status, answer)

        return wrapped

    def _http_add_org(self, body: Record) -> tuple[int, Any]:
        org = self.add_organisation(
            body["name"],
            body.get("base_currency", "AUD"),
            body.get("country", "AU"),
            tenant_id=body.get("tenant_id"),
            period_lock_date=body.get("period_lock_date"),
            end_of_year_lock_date=body.get("end_of_year_lock_date"),
        )
        return 201, {"tenant_id": org.tenant_id, "name": org.name}

    def _http_list_orgs(self, body: Record) -> tuple[int, Any]:
        with self.lock:
            return 200, [
                {
                    "tenant_id": o.tenant_id,
                    "name": o.name,
                    "base_currency": o.base_currency,
                    "country": o.country,
                    "period_lock_date": o.period_lock_date,
                    "end_of_year_lock_date": o.end_of_year_lock_date,
                }
                for o in self.organisations.values()
            ]

    def _http_add_user(self, body: Record) -> tuple[int, Any]:
        user = self.add_user(body["username"], body["password"], list(body.get("tenant_ids", [])))
        return 201, {"username": user.username, "xero_userid": user.user_id, "tenant_ids": user.tenant_ids}

    def _http_revoke(self, body: Record) -> tuple[int, Any]:
        return 200, {"revoked_grants": self.revoke_user_grants(body["username"], body.get("client_id"))}

    def _http_disconnect(self, body: Record, tenant: str) -> tuple[int, Any]:
        return 200, {"removed_connections": self.disconnect_organisation(tenant)}

    def _http_lock_dates(self, body: Record, tenant: str) -> tuple[int, Any]:
        org = self.set_lock_dates(
            tenant,
            period_lock_date=body.get("period_lock_date"),
            end_of_year_lock_date=body.get("end_of_year_lock_date"),
        )
        return 200, org.to_wire()

    def _http_add_record(self, body: Record, tenant: str, collection: str) -> tuple[int, Any]:
        return 201, self.add_record(tenant, collection, body)

    def _http_list_records(self, body: Record, tenant: str, collection: str) -> tuple[int, Any]:
        return 200, self.list_records(tenant, collection)

    def _http_change_record(
        self, body: Record, tenant: str, collection: str, record_id: str, verb: str
    ) -> tuple[int, Any]:
        if verb == "edit":
            return 200, self.edit_record(tenant, collection, record_id, body)
        if verb == "void":
            return 200, self.void_record(tenant, collection, record_id)
        return 200, self.delete_record(tenant, collection, record_id)
