"""Access tokens that are always usable, and refreshes that never burn a connection: one worker refreshes
under a lease on the grant row, and tokens open only for the organisation that asks (DESIGN.md, "Token
refresh")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from typing import TYPE_CHECKING, TypeVar

from shared.aws import is_outage
from shared.config import settings
from shared.contracts import ConnectionJob
from shared.domain.connections import PROVIDER_LABELS, ConnectionStatus, ProviderName, Tenant, TokenSet
from shared.errors import (
    AuthExpired,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RefreshUnavailable,
    TokenRefused,
)
from shared.model import Model
from shared.observability import logger
from shared.services import credentials, events, fanout
from shared.store import connections as store
from shared.vault import DataKey, Sealed, TokenContext, data_key, open_tokens, seal_tokens

if TYPE_CHECKING:
    from shared.providers.base import AccountingProvider

Clock = Callable[[], datetime]
T = TypeVar("T")
ON_DEMAND_MARGIN = timedelta(minutes=5)
SCHEDULED_MARGIN = timedelta(minutes=10)  # more than one schedule tick, so a token never lapses between ticks
# longer than a live refresh can take: sent within SEND_WITHIN, at the provider within the token request's
# pool, connect and write timeouts (15 s), answered within its read timeout (20 s), stored within STORE_WAITS
# (6 s): 51 s. A second worker takes the lease over only from a dead one, never while a live one's answer is
# on its way (it would refresh with the token QBO has just replaced, get invalid_grant and expire the grant)
LEASE_SECONDS = 60
# from the lease's start to the refresh request at most: the request then reaches the provider within its
# pool, connect and write timeouts (``http.TOKEN_TIMEOUT``, 15 s), inside the lease
SEND_WITHIN = 10
SLOW_LEASES = 3  # leases given up as too slow before the refresh is left for later (the store is struggling)
WAIT_STEPS = (0.05, 0.1, 0.2, 0.4, 0.8)
# waits for another worker's lease, in all, before giving up (503): an API answer stays well inside API
# Gateway's 29 s, and a dead worker's lease lapses within LEASE_SECONDS for the retry
WAIT_LIMIT = 20.0
# waits between tries to store a refresh's answer (6 s in all): well inside the lease, whose holder alone
# may store it (``store.store_refreshed``), after the request's own bounded time
STORE_WAITS = (0.25, 0.5, 1.0, 1.75, 2.5)


def utc_now() -> datetime:
    return datetime.now(UTC)


def epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


@cache
def provider(name: ProviderName) -> AccountingProvider:
    from shared.providers import get_provider  # the providers' code: the schedule's pass calls none

    return get_provider(name, partial(credentials.client_credentials, name), settings().provider_urls(name))


class ForeignGrant(AuthExpired):
    """The grant a connection names belongs to another organisation or provider (a tampered table)."""


def asking(connection: store.Connection) -> TokenContext:
    """Who asks for a connection's tokens: its organisation and provider (from the connection row's key,
    which the store puts in these fields) and the grant it names."""
    if connection.grant_id is None:
        raise AuthExpired(connection.provider, "the connection has no usable tokens; reconnect")
    return TokenContext(
        organisation_id=connection.organisation_id,
        provider=connection.provider,
        grant_id=connection.grant_id,
    )


def _check_owner(grant: store.GrantRow, asker: TokenContext) -> None:
    if (grant.organisation_id, grant.provider, grant.grant_id) != (
        asker.organisation_id,
        asker.provider,
        asker.grant_id,
    ):
        logger.warning(
            "grant refused: it does not belong to the asking organisation",
            extra={"organisation_id": asker.organisation_id, "provider": asker.provider},
        )
        raise ForeignGrant(
            asker.provider,
            "the stored connection does not belong to this organisation; reconnect to resume",
        )


def _expiry(tokens: TokenSet) -> dict[str, int]:
    fields = {
        "access_expires_at": epoch(tokens.access_expires_at),
        "refresh_expires_at": epoch(tokens.refresh_expires_at),
        "hard_expires_at": epoch(tokens.hard_expires_at),
    }
    return {k: v for k, v in fields.items() if v is not None}


def store_grant(
    organisation_id: str,
    provider_name: ProviderName,
    tokens: TokenSet,
    now: datetime,
    *,
    unclaimed_for: int | None = None,
) -> str:
    """Seals and stores a consent's tokens; ``unclaimed_for``: seconds after which they are deleted unless a
    connection claims them (``store.put_connection``)."""
    grant_id = str(uuid.uuid4())
    ctx = TokenContext(organisation_id=organisation_id, provider=provider_name, grant_id=grant_id)
    stamp = int(now.timestamp())
    store.put_grant(
        grant_id,
        organisation_id,
        provider_name,
        seal_tokens(tokens, ctx),
        _expiry(tokens),
        stamp,
        unclaimed_until=stamp + unclaimed_for if unclaimed_for is not None else None,
    )
    return grant_id


def stored_tokens(grant: store.GrantRow, asker: TokenContext) -> TokenSet:
    """The grant's tokens, for `asker` only: the grant must be theirs, and opens under their context."""
    _check_owner(grant, asker)
    return open_tokens(grant.sealed, asker)


def _live_grant(asker: TokenContext) -> store.GrantRow:
    grant = store.get_grant(asker.grant_id)
    if grant is not None:
        _check_owner(grant, asker)
    if grant is not None and grant.status != "active" and grant.status_reason:
        raise AuthExpired.from_stored(asker.provider, grant.status_reason)
    if grant is None or grant.status != "active":
        raise AuthExpired(asker.provider, "the connection has no usable tokens; reconnect")
    return grant


def pause(seconds: float) -> None:
    """Waits (for another worker's lease, or a store that throttles); tests replace it to wait for nothing."""
    time.sleep(seconds)


class RefreshBusy(ProviderUnavailable):
    """Another worker held the grant's refresh lease all through ``WAIT_LIMIT`` (a slow refresh, or a dead
    worker's lease, which lapses within ``LEASE_SECONDS``): nothing was changed, try again shortly."""


def fresh_tokens(
    asker: TokenContext,
    *,
    clock: Clock = utc_now,
    margin: timedelta = ON_DEMAND_MARGIN,
    sleep: Callable[[float], None] | None = None,
    refused: str | None = None,
) -> tuple[TokenSet, bool]:
    """Tokens valid for at least ``margin``, and whether this call refreshed them; ``refused``: an access
    token the provider refused, replaced however long it has left while the grant still holds it."""
    return _current(
        asker,
        str(uuid.uuid4()),
        clock=clock,
        margin=margin,
        sleep=sleep or pause,
        hold=False,
        refused=refused,
    )


@contextmanager
def ending(
    asker: TokenContext, *, clock: Clock = utc_now, sleep: Callable[[float], None] | None = None
) -> Iterator[TokenSet]:
    """The grant's current tokens, to end the consent with (a disconnect, a consent discarded), under its
    refresh lease: a refresh in flight is waited for, and none starts until the lease is let go (or deleted
    with the grant). Both providers rotate the refresh token at each refresh and the one before stops
    working (provider facts qbo.md 1.5: design for immediate invalidation; xero.md 1.2: only a retry of a
    lost answer, 30 minutes): a revoke naming it ends nothing, and the consent would stay live at the
    provider while Partsemble shows it ended. Refreshed first when the access token is due (Xero's revoke
    reads its connections with it). Raises ``RefreshBusy``."""
    owner = str(uuid.uuid4())
    current, _ = _current(asker, owner, clock=clock, margin=ON_DEMAND_MARGIN, sleep=sleep or pause, hold=True)
    try:
        yield current
    finally:  # gone with the grant once it is deleted; a lease not let go lapses by itself
        with suppress(Exception):
            store.release_lease(asker.grant_id, owner=owner)


def _current(
    asker: TokenContext,
    owner: str,
    *,
    clock: Clock,
    margin: timedelta,
    sleep: Callable[[float], None],
    hold: bool,
    refused: str | None = None,
) -> tuple[TokenSet, bool]:
    """Tokens valid for ``margin`` (and not ``refused``), refreshed under the grant's lease when due; with
    ``hold``, returned with that lease held by ``owner``. Due or not is decided again on each version read,
    so workers refused the same token at once wait for one refresh and use it. Another worker's lease is
    waited for ``WAIT_LIMIT`` seconds of waits at most (counted in waits, not by ``clock``: a disconnect's
    clock stands still at its request's time)."""
    grant_id = asker.grant_id
    waited = slow = 0
    waited_s = 0.0
    refreshed = False
    key: DataKey | None = None
    while True:
        grant = _live_grant(asker)
        tokens = stored_tokens(grant, asker)
        due = tokens.access_expires_at - clock() <= margin or tokens.access_token == refused
        if not due and not hold:
            return tokens, refreshed
        if due:
            # read before the lease, which runs from the time after it: a slow first read of the client
            # secret would otherwise spend the lease before the refresh is sent (``http.TOKEN_TIMEOUT``); and
            # the data key the new tokens are sealed with: a KMS outage stops the refresh before the provider
            # rotates the refresh token, not after (its answer could not be kept: the connection burned)
            credentials.client_credentials(grant.provider)
            key = key or data_key(asker)
        now = clock()
        leased = store.try_acquire_refresh_lease(
            grant_id,
            version=grant.version,
            owner=owner,
            now=int(now.timestamp()),
            ttl_s=LEASE_SECONDS,
        )
        if leased and (clock() - now).total_seconds() <= SEND_WITHIN:
            if not due:
                return tokens, refreshed
            tokens = _refresh(grant, asker, tokens, owner, now, key or data_key(asker), sleep)
            refreshed = True
            if not hold:
                return tokens, True
            continue  # the store let the lease go with the old version: taken again on the new one
        if leased:  # the lease's own write was slow: too little of it is left to send the refresh in
            store.release_lease(grant_id, owner=owner)
            slow += 1
            if slow == SLOW_LEASES:
                raise ProviderUnavailable(grant.provider, "the token store is too slow to refresh safely now")
        step = WAIT_STEPS[min(waited, len(WAIT_STEPS) - 1)]
        if waited_s + step > WAIT_LIMIT:
            raise RefreshBusy(
                grant.provider,
                "another refresh of this connection's tokens has not finished; nothing was changed, "
                "try again shortly",
            )
        sleep(step)  # another worker is refreshing: wait for its version
        waited, waited_s = waited + 1, waited_s + step


def _refresh(
    grant: store.GrantRow,
    asker: TokenContext,
    tokens: TokenSet,
    owner: str,
    now: datetime,
    key: DataKey,
    sleep: Callable[[float], None],
) -> TokenSet:
    name = grant.provider
    grant_id = asker.grant_id
    try:
        new = provider(name).refresh(tokens.refresh_token, now=now)
    except AuthExpired as err:
        newer = store.get_grant(grant_id)
        if newer and newer.version > grant.version:  # someone stored a newer set meanwhile: use it
            return stored_tokens(newer, asker)
        expire_grant(grant, reason=err.message, now=now)
        raise
    except (ProviderError, ProviderNotConfigured) as err:
        # transient, or this deployment's client credentials refused (invalid_client: the refresh token was
        # not looked at): the stored tokens are untouched, and the next caller need not wait for the lease
        store.release_lease(grant_id, owner=owner)
        if type(err) is ProviderUnavailable:
            detail = err.message.removeprefix(f"{name}: ")
            raise RefreshUnavailable(
                name, f"the connection's sign-in could not be refreshed: {detail}"
            ) from None
        raise
    # the provider has rotated the refresh token: the answer is the only live one, so a store that throttles
    # or is down is asked again, for a few seconds, well inside the lease (``STORE_WAITS``)
    sealed = seal_tokens(new, asker, key)
    for step in STORE_WAITS:
        try:
            return _keep(grant, asker, new, sealed, owner, now)
        except Exception as err:
            if not is_outage(err):
                raise
            logger.warning("refreshed tokens not stored yet; trying again", extra={"provider": name})
        sleep(step)
    return _keep(grant, asker, new, sealed, owner, now)


def _keep(
    grant: store.GrantRow, asker: TokenContext, new: TokenSet, sealed: Sealed, owner: str, now: datetime
) -> TokenSet:
    """Stores the refreshed tokens over the version the lease was taken on; after a write whose answer was
    lost but which committed, the newer version found is these tokens."""
    grant_id = asker.grant_id
    if store.store_refreshed(
        grant_id,
        version=grant.version,
        owner=owner,
        sealed=sealed,
        expiry=_expiry(new),
        now=int(now.timestamp()),
    ):
        return new
    newer = store.get_grant(grant_id)
    if newer is None:  # disconnected (or replaced by a reconnect) after its lease lapsed
        raise AuthExpired(
            grant.provider, "the connection was disconnected while its tokens were refreshed; reconnect"
        )
    if newer.version > grant.version:
        return stored_tokens(newer, asker)
    raise ProviderUnavailable(
        grant.provider, "the refreshed tokens could not be stored; the next attempt will recover"
    )


def expire_grant(grant: store.GrantRow, *, reason: str, now: datetime) -> None:
    """Marks the grant and its connection expired (once) and tells the app, in plain words."""
    store.mark_grant(grant.grant_id, "expired", reason=reason, now=int(now.timestamp()))
    _expire_connection(grant, reason=reason, now=now)


def _expire_connection(
    grant: store.GrantRow, *, reason: str, now: datetime, only_if_status: ConnectionStatus | None = None
) -> None:
    """Marks the grant's connection expired while it still names the grant (and, given ``only_if_status``,
    is still in that status), and tells the app, in plain words, when it did."""
    organisation, name = grant.organisation_id, grant.provider
    label = PROVIDER_LABELS[name]
    plain = (
        f"{label} no longer accepts Partsemble's access: it was disconnected or revoked in {label}, "
        "or the sign-in expired after a long time unused. Reconnect to resume."
    )
    expired = store.update_connection(
        organisation,
        name,
        {
            "status": "expired",
            "expired_reason": reason,
            "last_error": {"reason": plain, "detail": reason, "at": now.isoformat()},
        },
        only_if_grant=grant.grant_id,
        only_if_status=only_if_status,
    )
    if expired:
        logger.warning("connection expired", extra={"organisation_id": organisation, "provider": name})
        events.emit(
            "ConnectionExpired",
            {"organisation_id": organisation, "provider": name, "reason": reason, "at": now.isoformat()},
        )


def connection_refused(grant_id: str, *, reason: str, now: datetime) -> None:
    """The provider refuses the tenant (revoked, disconnected or removed): the connection is expired now,
    on whichever path noticed (an export, a catalog sync, a sales pull, the scheduled check). A grant
    expired before whose connection was not marked (that write failed) has its connection marked now."""
    grant = store.get_grant(grant_id)
    if grant and grant.status == "active":
        expire_grant(grant, reason=reason, now=now)
    elif grant:  # expired already: only its connection, while it still shows as connected on it (one write)
        _expire_connection(grant, reason=reason, now=now, only_if_status="connected")


class TokenSource:
    """A connection's access token for a run of provider calls: read once from the vault, replaced once the
    provider refuses it (unless another worker has replaced it already, or is replacing it: one refresh)."""

    def __init__(self, asker: TokenContext, *, clock: Clock = utc_now) -> None:
        self.asker, self.clock = asker, clock
        self._token: str | None = None

    def __call__(self, refused: bool) -> str:
        if refused or self._token is None:
            current, _ = fresh_tokens(self.asker, clock=self.clock, refused=self._token if refused else None)
            self._token = current.access_token
        return self._token


def call_with_token(connection: store.Connection, call: Callable[[str], T], *, clock: Clock = utc_now) -> T:
    """Runs a provider call with a fresh access token; a token the provider refuses is replaced once and
    the call repeated."""
    token = TokenSource(asking(connection), clock=clock)
    first = token(False)
    try:
        return call(first)
    except AuthExpired:
        pass
    return call(token(True))


class RefreshReport(Model):
    checked: int = 0
    refreshed: int = 0
    expired: int = 0
    retry_later: int = 0


def tenant_of(connection: store.Connection) -> Tenant:
    """The company the connection reaches."""
    if connection.tenant_id is None:
        raise AuthExpired(connection.provider, "the connection names no company; reconnect")
    return Tenant(
        tenant_id=connection.tenant_id,
        name=connection.tenant_name or "",
        connection_id=connection.xero_connection_id,
    )


def _check_connection(connection: store.Connection, clock: Clock) -> bool:
    """Refreshes when due and proves the tenant still answers; True when it refreshed."""
    asker = asking(connection)
    _, refreshed = fresh_tokens(asker, clock=clock, margin=SCHEDULED_MARGIN)
    name = connection.provider
    known = tenant_of(connection)
    tenant = call_with_token(connection, lambda token: provider(name).check_tenant(token, known), clock=clock)
    store.update_connection(  # a check that works again takes the note of the failing ones away
        connection.organisation_id,
        name,
        {"tenant_name": tenant.name, "last_checked_at": clock().isoformat(), "last_error": None},
        only_if_grant=asker.grant_id,
    )
    return refreshed


def _note_retrying(
    connection: store.Connection, err: ProviderError | ProviderNotConfigured, now: datetime
) -> None:
    """Shows on the connection's health that its checks fail for now (the token endpoint or the API down or
    throttling, the API refusing a token just refreshed, or the provider refusing this deployment's own
    client credentials) and are tried again at every tick: it is kept connected, and its stored tokens stay
    as they were or as refreshed. Best effort: the next tick writes it again."""
    label = PROVIDER_LABELS[connection.provider]
    earlier = connection.last_error or {}
    since = earlier.get("since") or now.isoformat()
    refused = isinstance(err, TokenRefused)
    if isinstance(err, ProviderNotConfigured):
        reason = (
            f"{label} does not accept Partsemble's own app credentials (its client id and secret) since "
            f"{since}: Partsemble's operators must update them. Your consent is not affected and you need "
            "not reconnect; the connection is checked again every few minutes."
        )
    elif refused:
        reason = (
            f"{label} refused Partsemble's access at its last check, even with a sign-in token it had just "
            "issued. It is checked again in a few minutes; if it refuses again, the connection will need "
            "reconnecting."
        )
    else:
        reason = (
            f"Partsemble's checks of the connection to {label} (which keep its sign-in fresh) fail for now, "
            f"since {since}. They are tried again every few minutes and the connection is kept; nothing "
            "needs doing."
        )
    note = {"reason": reason, "detail": err.message, "at": now.isoformat(), "since": since}
    if refused:
        note["refused"] = "true"
    try:
        store.update_connection(
            connection.organisation_id,
            connection.provider,
            {"last_error": note},
            only_if_grant=connection.grant_id,
            only_if_status="connected",
        )
    except Exception:
        logger.warning("a failing connection check could not be noted", exc_info=True)


RECHECK_AFTER = timedelta(minutes=4)  # checked more recently than this: not due (the schedule ticks every 5)


def _checked_recently(connection: store.Connection, now: datetime) -> bool:
    checked = connection.last_checked_at
    if not checked:
        return False
    try:
        return datetime.fromisoformat(checked) > now - RECHECK_AFTER
    except ValueError:
        return False


def enqueue_due(*, clock: Clock | None = None) -> fanout.FanOutReport:
    """The scheduled pass: one message per connected connection not checked in the last ``RECHECK_AFTER``,
    read shard by shard from the connections index (only the fields it decides on); the workers check them."""
    now = (clock or utc_now)()
    due = (
        ConnectionJob(organisation_id=c.organisation_id, provider=c.provider)
        for c in store.iter_connections(fields=("last_checked_at",))
        if c.status == "connected" and not _checked_recently(c, now)
    )
    return fanout.send_all(settings().connection_check_queue_url, due)


def check_one(job: ConnectionJob, *, clock: Clock | None = None) -> RefreshReport:
    """The worker: refresh this connection's tokens when near expiry (which also keeps an idle refresh token
    alive) and prove it still works, so a revoked one is noticed within a tick. A connection no longer
    connected, or checked moments ago (a message queued twice), is skipped; a failure is tried again at the
    next tick, never in a loop here."""
    clock = clock or utc_now
    report = RefreshReport()
    connection = store.get_connection(job.organisation_id, job.provider)
    if not connection or connection.status != "connected" or _checked_recently(connection, clock()):
        return report
    report.checked += 1
    try:
        report.refreshed += int(_check_connection(connection, clock))
    except ForeignGrant:  # never expire another organisation's grant on this connection's behalf
        report.retry_later += 1
    except TokenRefused as err:
        # the API refused even the token the provider had just refreshed (a consent ended at the provider
        # refuses the refresh itself: invalid_grant, below). QBO's authentication falters at times (401s
        # with valid tokens: minimul/qbo_api#96, intuit/oauth-jsclient#91), so the connection is expired
        # only when the next check is refused too (QBO's code 120, its user no longer an admin: qbo.md 2.8)
        if (connection.last_error or {}).get("refused") and connection.grant_id is not None:
            connection_refused(connection.grant_id, reason=err.message, now=clock())
            report.expired += 1
        else:
            _note_retrying(connection, err, clock())
            report.retry_later += 1
    except AuthExpired as err:
        if connection.grant_id is not None:
            connection_refused(connection.grant_id, reason=err.message, now=clock())
        report.expired += 1
    except ProviderNotConfigured as err:
        # invalid_client: the provider refuses this deployment's client id/secret (rotated in its developer
        # portal; qbo.md 1.5). The refresh token was not looked at, so the consent stands: an operator's
        # problem, not the customer's. Kept, noted, logged for the alarm, and tried again at the next tick
        logger.error(
            "connection check: this deployment's client credentials are refused or not set up",
            extra={
                "provider": connection.provider,
                "organisation_id": connection.organisation_id,
                "detail": err.message,
            },
        )
        _note_retrying(connection, err, clock())
        report.retry_later += 1
    except ProviderError as err:
        _note_retrying(connection, err, clock())
        report.retry_later += 1
    else:
        if connection.resume_pending and connection.grant_id:
            _resume_exports(connection, clock())
    return report


def _resume_exports(connection: store.Connection, now: datetime) -> None:
    """The exports its connect could not resume (an outage then) go on now, or at the next check."""
    from shared.services import exports  # here: the exports service imports this one

    try:
        exports.resume_pending(
            connection.organisation_id, connection.provider, connection.grant_id or "", now=now
        )
    except Exception:
        logger.warning("waiting exports not resumed yet", exc_info=True)
