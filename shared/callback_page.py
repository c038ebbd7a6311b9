"""The small HTML page the OAuth popup lands on: it tells the opener window the result with
``postMessage`` (to the app's origin only) and closes, or lets the person choose an organisation.
It carries no token, code or secret.

Text from outside (the company name, the provider's error_description) is escaped for where it lands:
html.escape in markup, and in the script a JSON literal whose <, >, &, U+2028 and U+2029 are written as
\\u escapes, so no text can close the script element or break the JavaScript string."""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Sequence

from shared.domain.connections import PROVIDER_LABELS

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "button{font-size:1rem;padding:.5rem 1rem}label{display:block;margin:.5rem 0}.error{color:#a00}"
)


# The page's icon, inline: without one a browser asks for /favicon.ico, which the gateway answers 401 (its
# JWT check), a console error. The page's policy must allow it (``img-src data:``)
ICON_LINK = '<link rel="icon" href="data:,">'

_SCRIPT_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def script_json(value: object) -> str:
    """A JSON literal safe inside an HTML <script> element: the same value, with nothing that ends the
    element (</script>, <!--) or a JavaScript line."""
    return json.dumps(value).translate(_SCRIPT_ESCAPES)


def _page(
    title: str, body: str, message: dict[str, object] | None, app_origin: str
) -> tuple[str, dict[str, str]]:
    nonce = secrets.token_urlsafe(12)
    script = ""
    if message is not None:
        script = (
            f'<script nonce="{nonce}">(function(){{var m={script_json(message)};'
            f"if(window.opener){{window.opener.postMessage(m,{script_json(app_origin)});"
            "setTimeout(function(){window.close();},1500);}})();</script>"
        )
    document = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{ICON_LINK}<title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}{script}</body></html>"
    )
    headers = {
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        f"script-src 'nonce-{nonce}'; form-action 'self'; frame-ancestors 'none'",
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
    }
    return document, headers


def connected(provider: str, company_name: str, app_origin: str) -> tuple[str, dict[str, str]]:
    label = PROVIDER_LABELS.get(provider, provider)
    body = (
        f"<h1>Connected to {html.escape(label)}</h1><p>Partsemble is now connected to "
        f"<strong>{html.escape(company_name)}</strong>. You can close this window.</p>"
    )
    return _page(
        f"Connected to {label}",
        body,
        {
            "source": "partsemble-oauth",
            "provider": provider,
            "status": "connected",
            "company_name": company_name,
        },
        app_origin,
    )


def failed(provider: str, code: str, reason: str, app_origin: str) -> tuple[str, dict[str, str]]:
    label = PROVIDER_LABELS.get(provider, provider)
    body = (
        f"<h1>Not connected to {html.escape(label)}</h1>"
        f'<p class="error" role="alert">{html.escape(reason)}</p>'
        "<p>Close this window and try again from Settings &rarr; Integrations.</p>"
    )
    return _page(
        f"{label}: not connected",
        body,
        {
            "source": "partsemble-oauth",
            "provider": provider,
            "status": "error",
            "error": code,
            "message": reason,
        },
        app_origin,
    )


def choose(
    provider: str, choice_token: str, choices: Sequence[tuple[str, str]], app_origin: str, *, action: str
) -> tuple[str, dict[str, str]]:
    label = PROVIDER_LABELS.get(provider, provider)
    options = "".join(
        f'<label><input type="radio" name="tenant_id" value="{html.escape(tenant_id)}" required'
        f"{' checked' if i == 0 else ''}> {html.escape(name)}</label>"
        for i, (tenant_id, name) in enumerate(choices)
    )
    body = (
        f"<h1>Choose the {html.escape(label)} organisation</h1>"
        "<p>You authorised several organisations. Choose the one this Partsemble organisation uses.</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="choice" value="{html.escape(choice_token)}">'
        f"<fieldset><legend>Organisations</legend>{options}</fieldset>"
        '<p><button type="submit">Connect this organisation</button></p></form>'
    )
    return _page(f"Choose a {label} organisation", body, None, app_origin)
