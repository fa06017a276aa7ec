"""In a real browser: make a CSR, import a PKCS#12, find it by SAN in the repository, download
its PEM and full chain, see it on the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import expect

from tests.e2e.conftest import login
from tests.unit.certs.factory import MiniPki, p12

P12_PASSWORD = "browser-p12-pass"


def _import_p12(page, live_server, tmp_path, cn: str, sans: list[str]):
    """Import, on the Import certificates page, a PKCS#12 of a new certificate for ``cn`` with
    its chain and key; returns (its MiniPki, the certificate), on the certificate's page."""
    pki = MiniPki()
    key, cert = pki.leaf(cn, sans)
    bundle = tmp_path / "bundle.p12"
    bundle.write_bytes(p12(key, cert, pki.chain, P12_PASSWORD))
    page.goto(live_server.url + "/certificates/import")
    page.locator("input[name=files]").set_input_files(str(bundle))
    page.locator("input[name=password]").fill(P12_PASSWORD)
    page.get_by_role("button", name="Import").click()
    page.wait_for_url(re.compile(r".*/certificates/\d+$"))
    return pki, cert


def test_csr_pkcs12_search_download_dashboard(page, live_server, tmp_path):
    login(page, live_server, "admin")

    # Make a key pair and CSR; the form suggests SANs from the CN as it is typed.
    page.goto(live_server.url + "/csrs/new")
    page.locator("input[name=CN]").press_sequentially("example.org", delay=20)
    use = page.locator("#name-check [data-fill-sans]")
    use.wait_for()
    assert "www.example.org" in page.locator("#name-check").inner_text()
    use.click()
    assert page.locator("#csr-sans").input_value() == "example.org, www.example.org"
    page.locator("select[name=key_type]").select_option("p256")
    page.get_by_role("button", name="Create key and CSR").click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))
    assert page.get_by_role("heading", name="CSR: example.org").is_visible()
    assert "BEGIN CERTIFICATE REQUEST" in page.locator("pre.pem").inner_text()

    # Import a PKCS#12 holding a certificate, its chain and its key.
    pki, cert = _import_p12(
        page, live_server, tmp_path, "pay.example.org", ["pay.example.org", "checkout.example.org"]
    )
    assert page.get_by_text("1 private key(s) stored encrypted").is_visible()

    # Find it by a SAN (the search runs as it is typed).
    page.goto(live_server.url + "/certificates/")
    page.get_by_placeholder("Name starts or ends with, serial or fingerprint").press_sequentially(
        "checkout.example", delay=20
    )
    page.wait_for_url(re.compile(r".*q=checkout\.example"))
    link = page.locator("#certificates-table").get_by_role("link", name="pay.example.org")
    link.wait_for()
    link.click()
    page.wait_for_url(re.compile(r".*/certificates/\d+$"))

    # Download the PEM and the full chain, and read them back.
    with page.expect_download() as d:
        page.locator("#dl-pem").click()
    assert x509.load_pem_x509_certificate(Path(d.value.path()).read_bytes()) == cert
    with page.expect_download() as d:
        page.locator("#dl-fullchain").click()
    assert x509.load_pem_x509_certificates(Path(d.value.path()).read_bytes()) == [
        cert,
        *pki.chain,
    ]

    # The key as PKCS#12, then as PKCS#8, from the same form: the page stays, and so does the
    # form's use (a form the page sends is otherwise sent once); the password is not left in
    # its fields once the file is saved.
    form = page.locator("#pkcs12-download")
    password = form.get_by_label("Password to protect the file")
    again = form.get_by_label("Repeat password")
    password.fill("download-pass-1")
    again.fill("download-pass-1")
    with page.expect_download() as d:
        form.get_by_role("button", name="Download with private key").click()
    bundle = pkcs12.load_pkcs12(Path(d.value.path()).read_bytes(), b"download-pass-1")
    assert bundle.cert.certificate == cert
    expect(password).to_have_value("")
    expect(again).to_have_value("")
    password.fill("download-pass-1")
    again.fill("download-pass-1")
    form.get_by_label("Format").select_option("pkcs8")
    with page.expect_download() as d:
        form.get_by_role("button", name="Download with private key").click()
    key = serialization.load_pem_private_key(Path(d.value.path()).read_bytes(), b"download-pass-1")
    assert key.public_key() == cert.public_key()

    # The dashboard counts it, charts it and lists it among the most urgent.
    page.goto(live_server.url + "/")
    assert page.locator("#urgent-table").get_by_role("link", name="pay.example.org").is_visible()
    assert page.locator("#expiry-timeline").is_visible()
    assert "certificate.add" in page.locator("#recent-activity").inner_text()
    valid = page.locator("#state-counts .tile-ok .tile-value").inner_text()
    assert valid == "1"


LONG_CN = "x" * 55 + ".example"  # 64 characters, the longest a common name may be
LONG_O = "Very Long Organisation Name Department Of Things " * 2


def _fits_its_card(page) -> None:
    """Every value of the page's field lists stays inside its card: wrapped, not cut off."""
    cut = page.evaluate(
        """() => [...document.querySelectorAll('dl.fields dd')].filter(dd => {
            const card = dd.closest('article').getBoundingClientRect();
            return dd.scrollWidth > dd.clientWidth + 1
                || dd.getBoundingClientRect().right > card.right + 1;
        }).map(dd => dd.previousElementSibling.textContent)"""
    )
    assert cut == []
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_long_names_wrap_on_the_csr_and_certificate_pages(page, live_server, tmp_path):
    page.set_viewport_size({"width": 1366, "height": 768})
    login(page, live_server, "admin")
    page.goto(live_server.url + "/csrs/new")
    page.locator("input[name=CN]").fill(LONG_CN)
    for field in ("O", "OU", "L"):
        page.locator(f"input[name={field}]").fill(LONG_O)
    page.locator("select[name=key_type]").select_option("p256")
    page.get_by_role("button", name="Create key and CSR").click()
    page.wait_for_url(re.compile(r".*/csrs/\d+$"))
    _fits_its_card(page)

    _import_p12(page, live_server, tmp_path, LONG_CN, [LONG_CN, "y" * 55 + ".example"])
    _fits_its_card(page)


def test_the_csr_form_starts_at_the_common_name_and_returns_to_the_wrong_field(page, live_server):
    login(page, live_server, "operator")
    page.goto(live_server.url + "/csrs/new")
    # No click: the common name takes the focus by itself (the browser gives it to the
    # autofocus field at its next rendering, which can come after "load").
    expect(page.locator("#csr-cn")).to_be_focused()
    page.keyboard.type("shop.example.org")
    assert page.locator("#csr-cn").input_value() == "shop.example.org"
    page.locator("#csr-sans").fill("bad..example.com")
    page.locator("#csr-cn").press("Enter")
    page.wait_for_load_state()
    sans = page.locator("#csr-sans")
    assert sans.get_attribute("aria-invalid") == "true"
    assert sans.evaluate("el => el === document.activeElement")
    error = page.locator("#" + sans.get_attribute("aria-describedby"))
    assert "not a valid DNS name" in error.inner_text()


def test_the_menus_work_from_the_keyboard(page, live_server):
    login(page, live_server, "admin")
    ssl = page.locator("nav .mainnav summary", has_text="SSL")
    ssl.focus()
    page.keyboard.press("Enter")
    menu = page.locator("nav .mainnav details", has=page.locator("summary", has_text="SSL"))
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    expect(menu.get_by_role("link", name="Certificates")).to_be_focused()
    page.keyboard.press("Escape")  # closes the menu, back on its summary
    expect(menu).not_to_have_attribute("open", "")
    expect(ssl).to_be_focused()
    page.keyboard.press("Enter")
    for _ in range(5):  # tabbing past the last entry leaves the menu closed behind
        page.keyboard.press("Tab")
    expect(menu).not_to_have_attribute("open", "")


def test_a_request_that_never_reaches_certdesk_says_so(page, live_server):
    login(page, live_server, "operator")
    # The name check of the CSR form cannot reach CertDesk: the banner says so.
    page.goto(live_server.url + "/csrs/new")
    page.route("**/csrs/check-names*", lambda route: route.abort())
    page.locator("#csr-cn").press_sequentially("shop.example.org", delay=20)
    expect(page.locator("#banner")).to_contain_text("CertDesk did not answer.")


def test_a_form_sent_back_puts_the_focus_on_its_wrong_field(page, live_server):
    login(page, live_server, "admin")
    page.goto(live_server.url + "/admin/settings/")
    proxy = page.get_by_label("Default HTTPS proxy")
    proxy.fill("http://u:secretpw@proxy:3128")
    proxy.press("Enter")
    page.wait_for_load_state()
    proxy = page.get_by_label("Default HTTPS proxy")
    expect(proxy).to_have_attribute("aria-invalid", "true")
    expect(proxy).to_be_focused()
    help_id = proxy.get_attribute("aria-describedby")
    expect(page.locator(f"#{help_id}")).to_contain_text("must not contain a password")
