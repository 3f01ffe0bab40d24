"""The small HTML pages of dashboard sign-in: confirm a magic link, then the result."""

from __future__ import annotations

from html import escape

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1a1d23}main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;
border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin-top:0}
button{font:inherit;padding:.7rem 1.4rem;border:0;border-radius:8px;background:#3b5bdb;
color:#fff;cursor:pointer}button:focus{outline:3px solid #91a7ff;outline-offset:2px}
code{display:block;word-break:break-all;background:#f1f3f5;padding:.6rem;border-radius:6px;
font-size:.8rem}
"""


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def confirm_page(token: str, action: str = "/v1/auth/confirm", product: str = "StackBE") -> str:
    """A GET shows this; only the form's POST spends the token."""
    return _page(
        f"Sign in to {product}",
        f"<h1>Sign in to {escape(product)}</h1><p>Press the button to finish signing in.</p>"
        f'<form method=post action="{escape(action, quote=True)}">'
        f'<input type=hidden name=token value="{escape(token, quote=True)}">'
        "<button type=submit>Sign in</button></form>",
    )


def customer_signed_in_page(product: str, email: str) -> str:
    return _page(
        "Signed in",
        f"<h1>Signed in</h1><p>You are signed in to {escape(product)} as {escape(email)}.</p>"
        "<p>You can close this page and return to the app.</p>",
    )


def signed_in_page(email: str, access_token: str, refresh_token: str, expires_in: int) -> str:
    return _page(
        "Signed in",
        f"<h1>Signed in</h1><p>You are signed in as {escape(email)}.</p>"
        f"<p>Access token (valid {expires_in // 60} minutes):</p>"
        f"<code>{escape(access_token)}</code>"
        f"<p>Refresh token:</p><code>{escape(refresh_token)}</code>",
    )


def failed_page(message: str) -> str:
    return _page(
        "Sign-in link not valid",
        f"<h1>This link cannot be used</h1><p>{escape(message)}</p>"
        "<p>Ask for a new sign-in link.</p>",
    )
