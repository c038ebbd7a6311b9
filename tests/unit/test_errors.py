"""A provider error's message names its provider once, whether built from the provider's words or again from
the whole message an earlier error was stored with."""

from __future__ import annotations

from shared.errors import AuthExpired, ProviderRejected


def test_a_provider_error_names_its_provider_before_the_providers_words() -> None:
    assert ProviderRejected("xero", "Account code '999' is not valid").message == (
        "xero: Account code '999' is not valid"
    )
    # the provider's own words are kept whole, even where they begin with its name
    assert ProviderRejected("xero", "xero: rejected").message == "xero: xero: rejected"


def test_an_expiry_built_again_from_its_stored_message_says_it_as_stored() -> None:
    first = AuthExpired("qbo", "invalid_grant: the refresh token was revoked")
    again = AuthExpired.from_stored("qbo", first.message)
    assert isinstance(again, AuthExpired)
    assert (again.message, str(again), again.provider) == (first.message, str(first), "qbo")
    assert again.message == "qbo: invalid_grant: the refresh token was revoked"
