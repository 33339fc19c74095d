"""What a setting's value may be, and what stands between a channel and delivery.

setting_problem checks one value by its kind (gstjobs.setting_defaults): the trigger on
gstjobs.settings calls it for every value stored, so SQL, the CLI and a DBA's UPDATE are refused
alike. delivery_problems looks at the settings together: a credential that would travel in
clear, a secret set for another endpoint, a host that resolves to a link-local (cloud metadata)
address. Both return a sentence for a person, or None.
"""

# The server compiles plpy/common.py into this module's namespace (cli/gstjobs/resources.py):
# these names come from there. Never run, so nothing is imported in a new session.
if False:
    from common import plan, sender_python

KIND = "SELECT kind, minimum, maximum FROM gstjobs.setting_defaults WHERE key = $1"
SETTING = "SELECT gstjobs.setting($1) AS value"
IS_ZONE = "SELECT litigation.is_iana_timezone($1) AS known"
COPY = "SELECT gstjobs.installation_problem() AS problem"
WHATSAPP_FIRMS = "SELECT count(*) AS firms FROM litigation.tenants WHERE whatsapp_enabled"
SECRET = """
SELECT (SELECT true FROM gstjobs.secrets WHERE key = $1) AS is_set,
       gstjobs.secret($1) IS NOT NULL AS usable, gstjobs.secret_problem($1) AS problem
"""

# names under which clouds serve instance metadata (and its credentials) on link-local addresses
METADATA_NAMES = {
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
}
# a plain address: RFC 5322's dot-atom local part, @, a host name (letters, digits, hyphens)
ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN = LABEL + r"(?:\." + LABEL + r")*"
EMAIL = ATOM + r"(?:\." + ATOM + r")*@" + DOMAIN


def setting_problem(key, value):
    found = plpy.execute(plan("kind", KIND, ["text"]), [key])
    if not found:
        return f"there is no setting {key!r}"
    row = found[0]
    if value is None or len(value) > 2000:
        return "a value is 0 to 2000 characters"
    if row["kind"] == "zone":
        if not plpy.execute(plan("zone", IS_ZONE, ["text"]), [value])[0]["known"]:
            return "it must be an IANA time zone such as Asia/Kolkata or Europe/London"
        return None
    ca_dir = None
    if row["kind"] == "path":
        ca_dir = plpy.execute(plan("setting", SETTING, ["text"]), ["smtp.ca_dir"])[0]["value"]
    return value_problem(row["kind"], value, row["minimum"], row["maximum"], ca_dir)


def value_problem(kind, value, minimum=None, maximum=None, ca_dir=None):
    """Why value is not a good value of this kind, or None (no database needed)."""
    if kind != "secret" and not printable(value):
        return "it contains a control character or a character that is not printed"
    if kind == "integer":
        if not (value.isascii() and value.isdigit() and len(value) <= 9):
            return f"it must be a whole number from {minimum} to {maximum}"
        if not minimum <= int(value) <= maximum:
            return f"it must be a whole number from {minimum} to {maximum}"
    elif kind == "tls":
        if value not in ("none", "starttls", "tls"):
            return "it must be none, starttls or tls"
    elif kind == "host":
        return host_problem(value) if value else None
    elif kind == "url":
        return url_problem(value) if value else None
    elif kind == "email":
        return email_problem(value)
    elif kind == "emails":
        for address in value.split(",") if value else ():
            problem = email_problem(address.strip())
            if problem:
                return problem
    elif kind == "text":
        if len(value) > 254 or not value.isascii():
            return "it must be at most 254 ASCII characters"
    elif kind == "secret":
        if not value or not all(32 <= ord(c) < 127 for c in value):
            return "a secret is 1 to 2000 printable ASCII characters, with no line break"
    elif kind == "directory":
        if not is_clean_path(value) or value == "/":
            return "it must be an absolute path to a directory other than /, with no . or .."
    elif kind == "path" and value and not in_directory(value, ca_dir):
        return (
            f"it must be a file in {ca_dir} (smtp.ca_dir, which a superuser sets), "
            "written as an absolute path with no . or .."
        )
    return None


def printable(value):
    return value.isprintable()


def in_directory(path, directory):
    """path, written plainly (no . or ..), is below directory; links are looked at on use."""
    return is_clean_path(path) and path.startswith(directory.rstrip("/") + "/")


def is_clean_path(value):
    import posixpath

    return value.startswith("/") and posixpath.normpath(value) == value and len(value) <= 1024


def address(host):
    """host as an IP address, or None when it is a name."""
    import ipaddress

    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def address_problem(ip):
    """Why gstjobs must not connect to this address: link-local (where clouds serve instance
    metadata and its credentials), unspecified or multicast."""
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return f"{ip} is a link-local, unspecified or multicast address"
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped and address_problem(mapped)


def host_problem(host):
    ip = address(host)
    if ip is not None:
        return address_problem(ip)
    if host.lower().rstrip(".") in METADATA_NAMES:
        return f"{host} is a cloud metadata service"
    import re

    if len(host) > 253 or not re.fullmatch(DOMAIN, host):
        return "it must be a host name (letters, digits, hyphens and dots) or an IP address"
    return None


def is_loopback(host):
    ip = address(host)
    return host.lower() == "localhost" if ip is None else ip.is_loopback


def url_problem(url):
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it must be an https:// URL"
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.netloc.endswith(":"):
        return "it must be an https:// URL"
    if parts.username is not None or parts.password is not None:
        return "it must not carry a user name or password (the token is a setting of its own)"
    if parts.query or parts.fragment:
        return "it must have no query or fragment: gstjobs appends /messages to it"
    if port == 0:
        return "its port must be from 1 to 65535"
    problem = host_problem(host)
    if problem:
        return problem
    if parts.scheme == "http" and not is_loopback(host):
        return "it must be https:// (http:// only to a server on this machine, for tests)"
    return None


def email_problem(value):
    """Why value is not one plain email address (local@domain, ASCII, no display name), as
    Python's email package, which builds every message, parses it; or None."""
    import re

    if len(value) > 254 or not re.fullmatch(EMAIL, value):
        return f"{value!r} is not an email address such as alerts@firm.example.in"
    from email import policy

    try:
        header = policy.default.header_factory("To", value)
        parsed = [a.addr_spec for a in header.addresses]
        defects = header.defects
    except Exception:  # the parser's own errors (it raises AttributeError on some input)
        return f"{value!r} is not an email address such as alerts@firm.example.in"
    if parsed != [value] or defects:
        return f"{value!r} is not an email address such as alerts@firm.example.in"
    return None


def delivery_problems(resolve):
    """(email, whatsapp, in_clear): why each channel may not be used with the settings in
    force, and whether they would send a credential in clear (which gstjobs.set_settings
    refuses outright)."""
    get = plan("setting", SETTING, ["text"])

    def setting(key):
        return plpy.execute(get, [key])[0]["value"]

    secret = plan("secret", SECRET, ["text"])
    email = whatsapp = in_clear = None
    host = setting("smtp.host")
    if not host:
        email = "smtp.host is not set: no email is sent until an administrator sets it"
    else:
        password = plpy.execute(secret, ["smtp.password"])[0]
        if password["usable"] and setting("smtp.tls") == "none" and not is_loopback(host):
            in_clear = email = (
                f"the SMTP password would travel in clear to {host}: set smtp.tls to "
                "starttls or tls (a password goes without TLS only to this machine)"
            )
        elif password["problem"]:
            email = password["problem"]
        elif setting("smtp.user") and not password["is_set"]:
            email = "smtp.user is set but smtp.password is not"
        else:
            email = ca_file_problem(setting("smtp.ca_file"), setting("smtp.ca_dir")) or (
                resolve and resolved_problem(host, int(setting("smtp.port")))
            )
    url = setting("whatsapp.url")
    if not url and plpy.execute(plan("whatsapp firms", WHATSAPP_FIRMS, []))[0]["firms"]:
        whatsapp = (
            "whatsapp.url is not set, and firms have WhatsApp on: their WhatsApp messages wait"
        )
    elif url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        token = plpy.execute(secret, ["whatsapp.token"])[0]
        if token["usable"] and parts.scheme != "https" and not is_loopback(parts.hostname or ""):
            in_clear = whatsapp = f"the WhatsApp token would travel in clear to {parts.hostname}"
        elif token["problem"]:
            whatsapp = token["problem"]
        elif not token["is_set"]:
            whatsapp = "whatsapp.url is set but whatsapp.token is not"
        else:
            whatsapp = url_problem(url)
            if not whatsapp and resolve:
                default = 443 if parts.scheme == "https" else 80
                whatsapp = resolved_problem(parts.hostname, parts.port or default)
    if (host and not email) or (url and not whatsapp):
        _, missing = sender_python()
        email = email or (host and missing)
        whatsapp = whatsapp or (url and missing)
    # a copy of the database (restored elsewhere, or renamed) sends nothing, whatever is set
    copy = plpy.execute(plan("copy", COPY, []))[0]["problem"]
    if copy:
        email = whatsapp = copy
    return {"email": email or None, "whatsapp": whatsapp or None, "in_clear": in_clear}


def ca_file_problem(ca_file, ca_dir):
    """The CA file, its links followed, must still be in smtp.ca_dir (its links followed)."""
    if not ca_file:
        return None
    import os.path

    inside = os.path.realpath(ca_dir).rstrip("/") + "/"
    if not os.path.realpath(ca_file).startswith(inside):
        return f"smtp.ca_file {ca_file} leads outside smtp.ca_dir {ca_dir}"
    return None


def resolved_problem(host, port):
    """A name that resolves to an address gstjobs must not connect to (a DNS answer can change
    after the setting was checked)."""
    if is_loopback(host):
        return None
    import socket

    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unreachable now: the send fails and is retried like any other
    for *_, sockaddr in found:
        ip = address(sockaddr[0].split("%", 1)[0])
        problem = ip is not None and address_problem(ip)
        if problem:
            return f"{host} resolves to {problem}"
    return None
