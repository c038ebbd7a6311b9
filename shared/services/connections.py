"""Connecting, choosing the organisation, health, and disconnecting (Settings -> Integrations)."""

from __future__ import annotations

import secrets
from contextlib import ExitStack, suppress
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from shared.aws import is_outage
from shared.config import settings
from shared.domain.connections import (
    IN_USE,
    PROVIDER_LABELS,
    PROVIDERS,
    ConnectionStatus,
    ProviderName,
    Tenant,
    TokenSet,
)
from shared.errors import AuthExpired, BadRequest, Conflict, NotFound, OAuthDeclined, ServiceError
from shared.model import Model
from shared.observability import logger
from shared.providers import provider_name
from shared.services import credentials, events, oauth_state
from shared.store import connections as store
from shared.store import sales as sales_store
from shared.vault import TokenContext

if TYPE_CHECKING:
    from shared.domain.catalog import Product
    from shared.providers.base import AccountingProvider

# shared.services.tokens (refreshes, leases, the providers' factory) is imported by the functions that use
# it: the API's status page and the callback's refusals never open tokens, and their cold start skips it.


def _provider(name: ProviderName) -> AccountingProvider:
    from shared.services import tokens

    return tokens.provider(name)


def callback_path(provider_: str) -> str:
    """The callback's path as browsers see it (the public base URL may carry a path of its own)."""
    return urlsplit(settings().redirect_uri(provider_)).path


def cookie_name(provider_: str) -> str:
    """The browser-binding cookie's name. Over HTTPS it carries the __Secure- prefix: browsers accept it
    only with the Secure attribute from an HTTPS answer, so a plain-HTTP page or a network attacker cannot
    plant or overwrite it. __Host- would also need Path=/, and this cookie is scoped to the callback's path
    so no other route of the API receives it. A local stack on plain http uses the bare name."""
    prefix = "__Secure-" if settings().public_base_url.startswith("https://") else ""
    return f"{prefix}ps_oauth_{provider_}"


class ConnectStart(Model):
    authorize_url: str
    cookie_name: str
    cookie_value: str
    cookie_path: str
    max_age: int


class TenantChoice(Model):
    tenant_id: str
    name: str


class CallbackOutcome(Model):
    provider: ProviderName
    status: Literal["connected", "choose"]
    company_name: str | None = None
    choices: list[TenantChoice] = Field(default_factory=list)
    choice_token: str | None = None


class ConnectionView(Model):
    provider: ProviderName
    provider_label: str
    status: ConnectionStatus | Literal["not_connected"]
    company_name: str | None = None
    tenant_id: str | None = None
    # other Partsemble organisations connected to this company too: their journals land in its books as well
    other_organisations: int = 0
    connected_at: str | None = None
    disconnected_at: str | None = None
    last_successful_sync_at: str | None = None
    last_checked_at: str | None = None
    last_error: dict[str, str] | None = None
    access_token_expires_at: str | None = None
    refresh_token_expires_at: str | None = None
    refresh_token_hard_expires_at: str | None = None
    reconnect_hint: str | None = None


def _iso(epoch_seconds: int | None) -> str | None:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat() if epoch_seconds is not None else None


# a consent that waits for a choice of organisation outlives the choice's own lifetime by an hour: a choice
# made at its last second still finds it (the table's TTL deletes it some time after, never before)
UNCLAIMED_CONSENT_SECONDS = oauth_state.LIFETIME_SECONDS + 3600


def _refuse_if_other_provider_active(organisation_id: str, wanted: ProviderName) -> None:
    for connection in store.list_connections(organisation_id):
        if connection.provider != wanted and connection.status in IN_USE:
            raise Conflict(
                f"this organisation is connected to {PROVIDER_LABELS[connection.provider]}; "
                f"disconnect it before connecting {PROVIDER_LABELS[wanted]}"
            )


def start_connect(organisation_id: str, name: str, *, switch_company: bool, now: datetime) -> ConnectStart:
    wanted = provider_name(name)
    credentials.client_credentials(wanted)  # refuses early when the provider is not configured
    _refuse_if_other_provider_active(organisation_id, wanted)
    binding = secrets.token_urlsafe(24)
    verifier, challenge = oauth_state.pkce_pair()
    state = oauth_state.issue(
        "STATE", organisation_id, wanted, binding, now, code_verifier=verifier, switch_company=switch_company
    )
    url = _provider(wanted).authorize_url(
        state=state, redirect_uri=settings().redirect_uri(wanted), code_challenge=challenge
    )
    return ConnectStart(
        authorize_url=url,
        cookie_name=cookie_name(wanted),
        cookie_value=binding,
        cookie_path=callback_path(wanted),
        max_age=oauth_state.LIFETIME_SECONDS,
    )


def complete_callback(
    name: str, params: dict[str, str], binding: str | None, now: datetime
) -> CallbackOutcome:
    wanted = provider_name(name)
    credentials.client_credentials(wanted)
    pending = oauth_state.consume("STATE", params.get("state"), wanted, binding, now)
    if params.get("error"):
        reason = params.get("error_description") or params["error"]
        raise OAuthDeclined(
            "you declined the connection"
            if params["error"] == "access_denied"
            else f"{PROVIDER_LABELS[wanted]} did not connect: {reason}"
        )
    if not params.get("code"):
        raise BadRequest("the provider sent no authorization code; start the connection again")
    organisation_id = pending["organisation_id"]
    try:
        grant = _provider(wanted).exchange_code(
            code=params["code"],
            redirect_uri=settings().redirect_uri(wanted),
            code_verifier=pending["code_verifier"],
            now=now,
            realm_id=params.get("realmId"),
        )
    except AuthExpired:  # invalid_grant on a code: expired, reused or issued for another redirect URI
        raise OAuthDeclined(
            f"{PROVIDER_LABELS[wanted]} did not accept the authorization; start the connection again"
        ) from None
    from shared.services.tokens import store_grant

    # a consent is deleted (the table's TTL) unless a connection claims it: one that waits for the person's
    # choice of organisation, or one whose connection was never written (the process died in between)
    waits = len(grant.tenants) != 1
    switch = bool(pending.get("switch_company"))
    grant_id: str | None = None
    try:
        grant_id = store_grant(
            organisation_id,
            wanted,
            grant.tokens,
            now,
            unclaimed_for=UNCLAIMED_CONSENT_SECONDS,
        )
        if not waits:
            return _attach(organisation_id, wanted, grant_id, grant.tenants[0], switch=switch, now=now)
        token = oauth_state.issue(
            "CHOICE",
            organisation_id,
            wanted,
            binding or "",
            now,
            grant_id=grant_id,
            switch_company=switch,
            tenants=[t.model_dump() for t in grant.tenants],
        )
    except Conflict:  # refused by _attach, which ended the consent itself
        raise
    except Exception:  # sealing (KMS) or storing (DynamoDB) failed: nobody would hold the new consent
        companies = {t.tenant_id for t in grant.tenants}
        _abandon_consent(organisation_id, wanted, grant.tokens, grant_id, companies)
        raise
    return CallbackOutcome(
        provider=wanted,
        status="choose",
        choice_token=token,
        choices=[TenantChoice(tenant_id=t.tenant_id, name=t.name) for t in grant.tenants],
    )


def choose_tenant(
    name: str, choice_token: str | None, tenant_id: str | None, binding: str | None, now: datetime
) -> CallbackOutcome:
    wanted = provider_name(name)
    pending = oauth_state.consume("CHOICE", choice_token, wanted, binding, now)
    tenants = [Tenant.model_validate(t) for t in pending["tenants"]]
    chosen = next((t for t in tenants if t.tenant_id == tenant_id), None)
    if chosen is None:  # the page offers only those: the choice (used now) and its consent end here
        _discard_grant(pending["organisation_id"], wanted, pending["grant_id"])
        raise BadRequest("choose one of the organisations you authorised; start the connection again")
    # The unchosen organisations stay in the consent: Xero connections belong to the person, and another
    # Partsemble organisation of the same person may be using one of them.
    try:
        return _attach(
            pending["organisation_id"],
            wanted,
            pending["grant_id"],
            chosen,
            switch=bool(pending.get("switch_company")),
            now=now,
        )
    except Exception:
        # the choice is used: a consent that no connection holds is not kept (_attach ends a refused one)
        with suppress(Exception):
            if not _perhaps_held(pending["organisation_id"], wanted, pending["grant_id"]):
                _discard_grant(pending["organisation_id"], wanted, pending["grant_id"])
        raise


def _perhaps_held(organisation_id: str, name: ProviderName, grant_id: str) -> bool:
    """Whether the connection names this consent, or may (the read failed): a failure after the connection
    was stored leaves it holding the consent, which is then kept."""
    try:
        stored = store.get_connection(organisation_id, name)
    except Exception:
        return True
    return stored is not None and stored.grant_id == grant_id


def _abandon_consent(
    organisation_id: str, name: ProviderName, tokens: TokenSet, grant_id: str | None, companies: set[str]
) -> None:
    """A new consent whose connection (or choice of organisation) could not be stored: ended at the provider
    (best effort, with the tokens the exchange gave: KMS may be what failed) and its stored tokens deleted,
    rather than left live with nobody holding them; one to a company the connection reaches is only
    deleted (``_connected_to``)."""
    if grant_id is not None and _perhaps_held(organisation_id, name, grant_id):
        return
    if not _connected_to(organisation_id, name, companies):
        try:
            _provider(name).release(tokens)
        except Exception as err:  # the failure being answered is the one the person sees
            logger.warning(
                "could not end an abandoned consent at the provider", extra={"error": type(err).__name__}
            )
    if grant_id is not None:
        with suppress(Exception):
            store.delete_grant(grant_id)


def _connected_to(organisation_id: str, name: ProviderName, companies: set[str]) -> bool:
    """Whether the organisation's connection reaches one of these companies (or may: the read failed). A
    consent to such a company is left to lapse rather than revoked: revoking one QBO consent may end the
    app's access to the whole company, the connection's own consent with it (provider facts qbo.md 1.4,
    UNSURE), and a Xero one reaching an organisation is kept by ``release`` anyway."""
    try:
        connection = store.get_connection(organisation_id, name)
    except Exception:
        return True
    return connection is not None and connection.status in IN_USE and connection.tenant_id in companies


def _discard_grant(organisation_id: str, name: ProviderName, grant_id: str, *, release: bool = True) -> None:
    """The consent's stored tokens deleted, ended at the provider first unless ``release`` is False (with its
    current tokens, under its refresh lease: ``tokens.ending``)."""
    grant = store.get_grant(grant_id)
    if grant is None:
        return
    if not release:
        store.delete_grant(grant_id)
        return
    from shared.services.tokens import ending

    with ExitStack() as held:  # the lease is held until the grant is deleted
        try:
            asker = TokenContext(organisation_id=organisation_id, provider=name, grant_id=grant_id)
            _provider(name).release(held.enter_context(ending(asker)))
        except ServiceError:
            logger.warning("could not end a discarded consent at the provider")
        store.delete_grant(grant_id)


def _attach(
    organisation_id: str, name: ProviderName, grant_id: str, tenant: Tenant, *, switch: bool, now: datetime
) -> CallbackOutcome:
    try:
        _refuse_if_other_provider_active(organisation_id, name)
        existing = store.get_connection(organisation_id, name)
        previous_tenant = existing.tenant_id if existing else None
        if existing and previous_tenant and previous_tenant != tenant.tenant_id and not switch:
            raise Conflict(
                f"Partsemble holds data from {existing.tenant_name or previous_tenant}; reconnect "
                f"that company, or choose to switch companies explicitly to use {tenant.name}"
            )
    except Conflict:
        _discard_grant(organisation_id, name, grant_id)
        raise
    same_company = previous_tenant == tenant.tenant_id
    switching = bool(existing and previous_tenant and not same_company)
    # the company switched from: this switch's, or one to this company whose process died part way (this
    # reconnect finishes it)
    switch_from = previous_tenant if switching else existing.switching_from if existing else None
    # a switch may fail part way: what it changes is read first, to be put back (below)
    products = _linked_products(organisation_id, name) if switching else []
    history: dict[str, Any] = (
        {"last_successful_sync_at": existing.last_successful_sync_at}
        if existing and same_company and existing.last_successful_sync_at is not None
        else {}
    )
    # the consent is kept (no longer deleted by the TTL) in the write that makes it the connection's
    written = store.put_connection(
        organisation_id,
        name,
        {
            **history,
            "status": "connected",
            "tenant_id": tenant.tenant_id,
            "tenant_name": tenant.name,
            "xero_connection_id": tenant.connection_id,
            "grant_id": grant_id,
            "connected_at": now.isoformat(),
            "previous_tenant_ids": sorted(
                {
                    *(existing.previous_tenant_ids if existing else []),
                    *([previous_tenant] if previous_tenant and not same_company else []),
                }
            ),
            # until the switch is done: the connection is not used (``sessions.session_for``), and a
            # reconnect finishes it should this process die part way
            **({"switching_from": switch_from} if switch_from else {}),
            # until the exports that waited for it are resumed (below, or the next connection check)
            **store.resume_mark(),
        },
        claims=grant_id,
        read=existing,
        alone=[other for other in PROVIDERS if other != name],
    )
    if not written:  # its TTL ran out (a choice made too late), or another callback connected meanwhile
        try:  # the other provider's, since the check above: refused as it is there
            _refuse_if_other_provider_active(organisation_id, name)
        except Conflict:
            _discard_grant(organisation_id, name, grant_id)
            raise
        raise NotFound(
            "the authorisation is no longer available, or another sign-in completed at the same time; "
            "check Settings -> Integrations and connect again if needed"
        )
    if switch_from:  # each step can be done again (``Product.with_company``)
        try:
            _switched(organisation_id, name, switch_from, tenant.tenant_id)
        except Exception:
            # the products may still hold the old company's item ids: the connection, the products and the
            # sales tracking go back to the old company (each best effort), so no export finds the new one
            # with them and the retry starts over
            if switching and existing:
                _put_back(organisation_id, name, existing, products, tenant.tenant_id)
            raise
        store.finish_switch(organisation_id, name)
    # the consent replaced ends only once the new one is the connection's: a write that failed leaves the
    # connection working on it (an outage answers 503 with nothing changed), never naming an ended consent
    if existing and existing.grant_id and existing.grant_id != grant_id:
        try:  # the same company's: only deleted (``_connected_to``)
            _discard_grant(organisation_id, name, existing.grant_id, release=not same_company)
        except Exception:  # the connection is made: a consent left over is not the person's failure
            logger.warning("could not end the consent a reconnect replaced", exc_info=True)
    # exports that waited for this connection (or for any: recorded while none was) go on by themselves
    from shared.services import exports  # here, not at the top: keeps the OAuth callback's cold start lean

    # the connection is made: what fails from here is said in the log, not as a failed connection
    try:
        exports.resume_pending(organisation_id, name, grant_id, now=now)
    except Exception:  # the connection stays marked: its next check resumes them
        logger.warning("connected, but its waiting exports were not resumed", exc_info=True)
    if existing and existing.status == "expired":
        try:
            events.emit(
                "ConnectionRestored",
                {"organisation_id": organisation_id, "provider": name, "at": now.isoformat()},
            )
        except Exception:
            logger.warning("connected, but the ConnectionRestored event was not sent", exc_info=True)
    logger.info("connection completed", extra={"organisation_id": organisation_id, "provider": name})
    return CallbackOutcome(provider=name, status="connected", company_name=tenant.name)


def _linked_products(organisation_id: str, name: ProviderName) -> list[Product]:
    """The products a switch of ``name``'s company may change (those with a link to one of its companies)."""
    from shared.store import catalog as catalog_store  # a switch only: keeps the callback's start lean

    return [
        p
        for p in catalog_store.products(organisation_id)
        if name in p.provider_links or any(k.startswith(f"{name}:") for k in p.former_links)
    ]


def _put_back(
    organisation_id: str,
    name: ProviderName,
    connection: store.Connection,
    products: list[Product],
    after: str,
) -> None:
    """After a switch to company `after` that failed part way: the connection, its products' links and its
    sales tracking as they were before it, each best effort (an outage may refuse one and not another). Of
    a product, the links the switch changes only (the switch's change undone, key by key: written or not, it
    reads as before), so what another request wrote to it meanwhile stays."""
    from shared.store import catalog as catalog_store

    kept = connection.model_dump(exclude={"organisation_id", "provider", "tenant_indexed"})
    with suppress(Exception):
        store.put_connection(organisation_id, name, {k: v for k, v in kept.items() if v is not None})
    with suppress(Exception):
        before = connection.tenant_id or ""
        catalog_store.change_links(
            organisation_id, ((p.with_company(name, before, after), p) for p in products)
        )
    with suppress(Exception):  # its cursor is gone: the next pull reads from the start date again
        sales_store.switch_company(organisation_id, name, connection.tenant_id or "")


def _switched(organisation_id: str, name: ProviderName, before: str, after: str) -> None:
    """Nothing read from the company before is used for the new one: its items, chart, suppliers and sync
    cursors are forgotten and the products' links to its items kept aside, so no export names its ids and no
    document of the new company maps by them; its sales documents keep their mapping, the new company's
    sales are read from the start date, and its first export fixes the posting mode anew."""
    # here, not at the top: the callback loads the catalog and settings code only for a switch
    from shared.store import catalog as catalog_store
    from shared.store import settings as settings_store

    moved = catalog_store.forget_company(organisation_id, name, before, after)
    sales_store.switch_company(organisation_id, name, after)
    settings_store.unlock_mode(organisation_id, name)
    logger.info(
        "company switched",
        extra={"organisation_id": organisation_id, "provider": name, "products_links_moved": moved},
    )


def _view(name: ProviderName, connection: store.Connection | None) -> ConnectionView:
    if not connection:
        return ConnectionView(provider=name, provider_label=PROVIDER_LABELS[name], status="not_connected")
    grant = store.get_grant(connection.grant_id) if connection.grant_id else None
    status = connection.status
    return ConnectionView(
        provider=name,
        provider_label=PROVIDER_LABELS[name],
        status=status,
        company_name=connection.tenant_name,
        tenant_id=connection.tenant_id,
        other_organisations=len(_others_on_company(connection)) if status in IN_USE else 0,
        connected_at=connection.connected_at,
        disconnected_at=connection.disconnected_at,
        last_successful_sync_at=connection.last_successful_sync_at,
        last_checked_at=connection.last_checked_at,
        last_error=connection.last_error,
        access_token_expires_at=_iso(grant.access_expires_at) if grant else None,
        refresh_token_expires_at=_iso(grant.refresh_expires_at) if grant else None,
        refresh_token_hard_expires_at=_iso(grant.hard_expires_at) if grant else None,
        reconnect_hint=_reconnect_hint(name, connection),
    )


def _reconnect_hint(name: ProviderName, connection: store.Connection) -> str | None:
    """Why the person must reconnect, and how: an expired connection, or a connected one whose switch of
    company did not finish (its process died part way: nothing uses it, ``sessions.session_for``, until a
    reconnect to that company finishes the switch)."""
    label = PROVIDER_LABELS[name]
    if connection.status == "expired":
        return f"Click Reconnect and sign in to {label} again; pending exports will resume by themselves."
    if connection.status == "connected" and connection.switching_from:
        company = connection.tenant_name or connection.tenant_id
        return (
            f"The switch to {company} did not finish, so nothing is sent to {label} until it does. Click "
            f"Reconnect and sign in to {label} choosing {company} to finish it; pending exports will resume "
            "by themselves."
        )
    return None


def status(organisation_id: str) -> list[ConnectionView]:
    by_provider = {c.provider: c for c in store.list_connections(organisation_id)}
    return [_view(name, by_provider.get(name)) for name in PROVIDERS]


def _others_on_company(connection: store.Connection) -> list[store.Connection]:
    """The connections of other Partsemble organisations in use with the same company."""
    if connection.tenant_id is None:
        return []
    others = (
        store.get_connection(organisation, connection.provider)
        for organisation in store.organisations_of_tenant(connection.provider, connection.tenant_id)
        if organisation != connection.organisation_id
    )
    return [o for o in others if o is not None and o.status in IN_USE and o.tenant_id == connection.tenant_id]


def _tenant_connection_shared(connection: store.Connection) -> bool:
    """Whether another Partsemble organisation uses the same Xero tenant connection. A Xero connection
    belongs to the person and the tenant, not to a Partsemble organisation: when the same person connects
    one tenant to two organisations, both grants reach it through one connection id, and deleting it for
    one would break the other."""
    if connection.provider != "xero":
        return False
    mine = connection.xero_connection_id
    return any(mine is None or o.xero_connection_id in (None, mine) for o in _others_on_company(connection))


def disconnect(organisation_id: str, name: str, now: datetime) -> ConnectionView:
    """Deletes the token ciphertext, keeping every other record, then revokes at the provider (best effort).
    The store goes first: a store that fails leaves the connection and its consent as they were (a 503 that
    changed nothing), never a consent revoked under a connection still shown connected."""
    wanted = provider_name(name)
    connection = store.get_connection(organisation_id, wanted)
    if not connection or connection.status == "disconnected":
        raise NotFound(f"this organisation is not connected to {PROVIDER_LABELS[wanted]}")
    grant = store.get_grant(connection.grant_id) if connection.grant_id else None
    release, note = None, None
    # the grant's refresh lease, from before its tokens are read until it is deleted
    with ExitStack() as held:
        if grant is not None and grant.status == "active":
            credentials.client_credentials(wanted)  # read now: the revoke after the store reads no secret
            from shared.services.tokens import RefreshBusy, asking, ending, tenant_of

            try:  # with the current tokens: none rotates them meanwhile (``tokens.ending``)
                tokens = held.enter_context(ending(asking(connection), clock=lambda: now))
                if _tenant_connection_shared(connection):  # end only this consent, if nothing else uses it
                    release = partial(_provider(wanted).release, tokens)
                else:
                    release = partial(_provider(wanted).disconnect_tenant, tokens, tenant_of(connection))
            except RefreshBusy:  # a refresh still running: nothing was changed (503), the retry ends it
                raise
            except ServiceError as err:
                note = _not_told(wanted, err)
        fields: dict[str, Any] = {
            "status": "disconnected",
            "grant_id": None,
            "disconnected_at": now.isoformat(),
        }
        last_error = {"reason": note, "at": now.isoformat()} if note else None
        # one write: a store that fails here leaves the connection with its tokens and the consent live (503),
        # never "connected" with its ciphertext gone or on a revoked consent; the grant deleted, no refresh
        # rotates the tokens the revoke below names
        if not store.disconnect(
            organisation_id, wanted, {**fields, "last_error": last_error}, grant_id=connection.grant_id
        ):
            raise Conflict(
                f"the {PROVIDER_LABELS[wanted]} connection changed as it was disconnected; try again"
            )
    if release is not None:
        try:
            release()
        except ServiceError as err:  # best effort: the person's disconnect never fails on the provider
            last_error = {"reason": _not_told(wanted, err), "at": now.isoformat()}
            _note_disconnected(organisation_id, wanted, last_error)
    return _view(
        wanted,
        store.Connection.model_validate({**connection.model_dump(), **fields, "last_error": last_error}),
    )


def _not_told(name: ProviderName, err: ServiceError) -> str:
    return (
        f"Partsemble disconnected, but {PROVIDER_LABELS[name]} could not be told ({err.message}); "
        f"you can also remove Partsemble in {PROVIDER_LABELS[name]}'s connected apps"
    )


def _note_disconnected(organisation_id: str, name: ProviderName, last_error: dict[str, str]) -> None:
    """Shows why the provider still lists the app; the disconnect itself is done, so an outage here is only
    logged (answering 503 would say nothing changed)."""
    try:
        store.update_connection(
            organisation_id, name, {"last_error": last_error}, only_if_status="disconnected"
        )
    except Exception as err:
        if not is_outage(err):
            raise
        logger.warning("the reason the provider was not told could not be stored", exc_info=True)
