"""Decimal arithmetic for money and quantities: the costing context, cents and exact allocation.

Costs stay exact (34 significant digits, the decimal128 precision) through the ledger; money is rounded to
cents only where it leaves the domain (a journal line, a report figure). Rounding to cents is ROUND_HALF_UP,
the commercial rule QBO and Xero apply to line amounts and the one accountants check by hand; half-even
would make our figures disagree with the provider's own arithmetic on exact half cents.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

CENT = Decimal("0.01")
ZERO = Decimal(0)

# One fixed context for every costing computation, so results never depend on the caller's thread context.
COST_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def to_cents(amount: Decimal) -> Decimal:
    """Round a money amount to cents, half up (see the module docstring for why)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def unsigned_zero(value: Decimal) -> Decimal:
    """A zero without its sign: ``-0`` and ``-0.0`` (a JSON number, a cost written "-0" in a file) equal 0
    and pass "at least 0", but their sign would stay in the record and every answer showing it."""
    return value.copy_abs() if value.is_zero() else value


def total(values: Iterable[Decimal]) -> Decimal:
    """The sum in the costing context (an empty sum is Decimal 0, never int 0)."""
    with localcontext(COST_CONTEXT):
        return sum(values, ZERO)


def allocate_cents(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split `amount` (in cents) into parts proportional to `weights` that sum to `amount` exactly.

    Largest remainder: each part is first rounded toward zero to cents, then the leftover cents go one each
    to the parts with the largest remainders, ties to the earlier part, so the split is deterministic.
    """
    if amount != to_cents(amount):
        raise ValueError(f"amount {amount} is not in cents")
    weight_sum = total(weights)
    if not weights or weight_sum == 0:
        raise ValueError("cannot allocate over zero weights")
    ctx = COST_CONTEXT
    exact = [ctx.divide(ctx.multiply(amount, w), weight_sum) for w in weights]
    floors = [e.quantize(CENT, rounding=ROUND_DOWN) for e in exact]
    leftover = int((amount - total(floors)) / CENT)
    step = CENT if leftover >= 0 else -CENT
    order = sorted(range(len(weights)), key=lambda i: (-abs(exact[i] - floors[i]), i))
    for i in order[: abs(leftover)]:
        floors[i] += step
    return floors
