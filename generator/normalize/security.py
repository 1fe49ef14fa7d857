"""A server's security schemes against what the MQTT runtime can present: a user name and
password, and a TLS client certificate. Every other scheme gets a warning at the place the
server asks for it, rather than a service that fails to connect without a word."""

from __future__ import annotations

from generator.normalize.common import Context, text
from generator.refs import REF, Node, is_ref

# The scheme types the runtime serves, and the settings that carry them.
SERVED = {
    "userPassword": "MQTT_USERNAME and MQTT_PASSWORD",
    "X509": "MQTT_TLS, MQTT_CERT_FILE and MQTT_KEY_FILE",
}


def server_security(ctx: Context, name: str, server: Node) -> tuple[str, ...]:
    """The served scheme types the server asks for, in order; a warning for each other one.
    3.x lists schemes (or references to them); 2.x lists requirements by scheme name."""
    listed = server.get("security")
    if listed is None or not isinstance(listed.value, list):
        return ()
    served: list[str] = []
    for index, entry in enumerate(listed.value):
        site = Node(listed.ws, listed.doc, f"{listed.pointer}/{index}", entry)
        for scheme_name, scheme in _schemes(ctx, site):
            kind = text(scheme.get("type")) if scheme is not None else ""
            if kind in SERVED:
                served += [] if kind in served else [kind]
                continue
            what = f"{kind!r} security" if kind else "a security scheme that is not defined"
            ctx.warn(
                f"server {name!r} asks for {what} (scheme {scheme_name!r}), which the generated "
                "service cannot present: it connects with a user name and password "
                "(MQTT_USERNAME, MQTT_PASSWORD) or a TLS client certificate (MQTT_CERT_FILE, "
                "MQTT_KEY_FILE) only",
                site,
            )
    return tuple(served)


def _schemes(ctx: Context, site: Node) -> list[tuple[str, Node | None]]:
    """(name, scheme) of one `security` entry: a scheme or a reference to one (3.x), or a
    requirement naming schemes of `components.securitySchemes` (2.x)."""
    if ctx.version.startswith("3."):
        name = str(site.value[REF]).rsplit("/", 1)[-1] if is_ref(site.value) else "(inline)"
        return [(name, site.deref())]
    if not isinstance(site.value, dict):
        return []
    root = ctx.ws.root_node()
    components = root.get("components")
    defined = components.get("securitySchemes") if components is not None else None
    return [(key, defined.get(key) if defined is not None else None) for key in site.value]
