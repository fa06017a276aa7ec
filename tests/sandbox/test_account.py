"""Clients, organizations, OUs, domains (filters, add, reverify, challenge), async jobs."""

from __future__ import annotations

import re
import threading
from email.utils import parsedate_to_datetime

from entrust_sandbox.ca import make_csr

from . import schema
from .conftest import assert_error


def test_clients_and_organizations(api):
    clients = api.get("clients").json()["clients"]
    assert [c["clientId"] for c in clients] == [1, 2, 3]
    assert clients[0]["uri"] == "/enterprise/v2/clients/1"
    assert {c["verificationStatus"] for c in clients} == {"APPROVED", "PENDING"}
    orgs = api.get("organizations").json()["organizations"]
    assert all("clientId" in o for o in orgs)
    per_client = api.get("clients/1/organizations").json()["organizations"]
    assert per_client and all(set(o) == {"name", "verificationStatus"} for o in per_client)
    assert "organizations" in api.get("clients/1").json()
    assert "organizations" not in api.get("clients/2").json()
    ous = api.get("clients/1/organizationalUnits").json()
    assert set(ous) == {"organizationalunits"}


def test_client_vetting_dates_are_written_with_milliseconds(api):
    # GET /clients shows ovExpiryDate and evExpiryDate as "2019-06-01T12:24:27.627Z", unlike the
    # whole seconds of certificate and domain times; GET /clients/{id} writes them the same way.
    millis = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
    clients = {c["clientId"]: c for c in api.get("clients").json()["clients"]}
    assert millis.match(clients[1]["ovExpiryDate"]) and millis.match(clients[1]["evExpiryDate"])
    assert millis.match(clients[2]["ovExpiryDate"])
    assert "ovExpiryDate" not in clients[3]  # only once the client is APPROVED
    primary = api.get("clients/1").json()
    assert primary["ovExpiryDate"] == clients[1]["ovExpiryDate"]
    assert primary["evInfo"]["expiryDate"] == clients[1]["evExpiryDate"]


def test_domains_have_every_status_and_filters(api):
    domains = api.get("domains", params={"limit": 100}).json()["domains"]
    statuses = {d["verificationStatus"] for d in domains}
    assert statuses == {
        "APPROVED",
        "RE_VERIFICATION",
        "EXPIRING",
        "INITIAL_VERIFICATION",
        "DECLINED",
        "CANCELLED",
        "EXPIRED",
    }
    assert all("status" not in d for d in domains)
    approved = api.get("domains", params={"verificationStatus": "in:APPROVED,EXPIRING"}).json()
    assert {d["verificationStatus"] for d in approved["domains"]} == {"APPROVED", "EXPIRING"}
    client2 = api.get("domains", params={"clientId": 2}).json()["domains"]
    assert {d["clientId"] for d in client2} == {2}
    contains = api.get("clients/1/domains", params={"domainName": "con:example."}).json()
    assert all("example." in d["domainName"] for d in contains["domains"])
    soon = api.get("domains", params={"ovExpiry": "lt:2100-01-01T00:00:00.000Z"}).json()
    assert soon["domains"] and all(d["ovExpiry"] < "2100" for d in soon["domains"])
    dns = api.get("domains", params={"verificationMethod": "DNS", "ovEligible": "true"}).json()
    assert all(d["verificationMethod"] == "DNS" and d["ovEligible"] for d in dns["domains"])
    paged = api.get("domains", params={"limit": 3, "offset": 3, "sort": "domainName:desc"}).json()
    assert paged["summary"]["total"] == 10 and len(paged["domains"]) == 3
    names = [d["domainName"] for d in paged["domains"]]
    assert names == sorted(names, reverse=True)
    assert_error(api.get("domains", params={"verificationStatus": "con:APP"}), 400)
    assert_error(api.get("clients/1/domains", params={"limit": 5000}), 400, "limit")


def test_add_domain_and_challenge(api, sb):
    response = api.post(
        "clients/1/domains",
        {"domainName": "New.Example", "verificationMethod": "DNS", "extra": 1},
    )
    assert response.status_code == 202 and response.content == b""
    assert response.headers["Location"] == "/clients/1/domains/new.example"
    parsedate_to_datetime(response.headers["Retry-After"])  # an HTTP-date
    domain = api.get("clients/1/domains/new.example")
    schema.check(domain, "/clients/{clientId}/domains/{domain}", "GET")
    body = domain.json()
    assert body["verificationStatus"] == "INITIAL_VERIFICATION"
    assert body["dnsMethod"]["recordDomain"] == "_pki-validation.new.example"
    assert body["dnsMethod"]["recordType"] == "TXT"
    assert len(body["dnsMethod"]["recordValue"]) == 32
    assert_error(
        api.post("clients/1/domains", {"domainName": "new.example", "verificationMethod": "DNS"}),
        400,
        "domainName",
    )
    assert_error(api.order("www.new.example"), 400, "subjectAltName")
    sb.set_domain_status("new.example", "APPROVED")
    assert api.order("www.new.example").status_code == 201


def test_challenge_appears_after_the_delay(api, sb):
    sb.update_settings(dcv_delay_seconds=600)
    api.post("clients/1/domains", {"domainName": "slow.example", "verificationMethod": "DNS"})
    assert "dnsMethod" not in api.get("clients/1/domains/slow.example").json()
    sb.advance_clock(1)
    assert "dnsMethod" in api.get("clients/1/domains/slow.example").json()


def test_reverify(api):
    before = api.get("clients/1/domains/example.com").json()
    response = api.put("clients/1/domains/example.com", {"verificationMethod": "WEB_SERVER"})
    assert response.status_code == 202
    after = api.get("clients/1/domains/example.com").json()
    assert after["verificationStatus"] == "RE_VERIFICATION"  # still usable
    web = after["webServerMethod"]
    assert web["fileLocation"].startswith("http://example.com/.well-known/pki-validation/")
    assert "dnsMethod" not in after and before["dnsMethod"]["recordValue"] != web["fileContents"]
    assert api.order("www.example.com").status_code == 201
    api.put("clients/1/domains/pending.example", {"verificationMethod": "EMAIL"})
    pending = api.get("clients/1/domains/pending.example").json()
    assert pending["verificationStatus"] == "INITIAL_VERIFICATION"
    assert "admin@pending.example" in pending["emailMethod"]
    assert_error(api.put("clients/1/domains/nope.example", {"verificationMethod": "DNS"}), 404)


def test_a_null_email_source_is_the_default(api):
    """A client that serializes nulls sends "emailSource": null with "email": null: no source
    given, so INCLUDE_WHOIS, as when the key is left out."""
    body = {
        "domainName": "nulls.example",
        "verificationMethod": "EMAIL",
        "emailMethod": {"emailSource": None, "email": None},
    }
    assert api.post("clients/1/domains", body).status_code == 202
    emails = api.get("clients/1/domains/nulls.example").json()["emailMethod"]
    assert "admin@nulls.example" in emails and "hostmaster@nulls.example" in emails
    redo = api.put(
        "clients/1/domains/nulls.example", {k: body[k] for k in body if k != "domainName"}
    )
    assert redo.status_code == 202, redo.text


def test_an_email_method_that_is_no_object_is_refused_and_changes_nothing(api):
    """emailMethod in a request is an object; the answer's list of addresses, or a bare
    address, was dropped without a word, and the domain validated by other addresses."""
    before = api.get("clients/1/domains", params={"limit": 1000}).json()["domains"]
    for email_method in (["hostmaster@list.example"], "hostmaster@list.example", 5):
        body = {"domainName": "list.example", "verificationMethod": "EMAIL"}
        added = api.post("clients/1/domains", {**body, "emailMethod": email_method})
        assert_error(added, 400, "emailMethod")
        redo = {"verificationMethod": "EMAIL", "emailMethod": email_method}
        assert_error(api.put("clients/1/domains/example.com", redo), 400, "emailMethod")
    assert api.get("clients/1/domains", params={"limit": 1000}).json()["domains"] == before
    # With another method, emailMethod does not apply and is not looked at.
    other = {"domainName": "list.example", "verificationMethod": "DNS", "emailMethod": "x"}
    assert api.post("clients/1/domains", other).status_code == 202


def test_email_method_specified(api):
    body = {
        "domainName": "mail.example",
        "verificationMethod": "EMAIL",
        "emailMethod": {"emailSource": "SPECIFIED", "email": "hostmaster@mail.example"},
    }
    assert api.post("clients/1/domains", body).status_code == 202
    assert api.get("clients/1/domains/mail.example").json()["emailMethod"] == [
        "hostmaster@mail.example"
    ]
    # Any other address is taken as one the domain's WHOIS record lists (the sandbox has none
    # to look in): a registrant's mailbox is often on another domain, and Ansible sends it.
    body["domainName"] = "mail2.example"
    body["emailMethod"]["email"] = "Registrant.Contact@elsewhere.example"
    assert api.post("clients/1/domains", body).status_code == 202
    assert api.get("clients/1/domains/mail2.example").json()["emailMethod"] == [
        "registrant.contact@elsewhere.example"
    ]
    body["domainName"] = "mail3.example"
    for email in ("not an address", "two@a.example,three@b.example", ""):
        body["emailMethod"]["email"] = email
        assert_error(api.post("clients/1/domains", body), 400, "emailMethod.email")
    # An address built on a parent domain validates a subdomain (admin@ansible.com for
    # example1.ansible.com, as the Ansible module documents), but not on the bare TLD.
    body["domainName"] = "shop.web.example"
    body["emailMethod"]["email"] = "admin@web.example"
    assert api.post("clients/1/domains", body).status_code == 202
    assert api.get("clients/1/domains/shop.web.example").json()["emailMethod"] == [
        "admin@web.example"
    ]
    body["domainName"] = "shop2.web.example"
    body["emailMethod"]["email"] = "admin@example"
    assert_error(api.post("clients/1/domains", body), 400, "emailMethod.email")
    assert_error(
        api.post("clients/9/domains", {"domainName": "x.example", "verificationMethod": "DNS"}),
        404,
    )


def test_a_specified_address_that_is_no_string_is_refused_and_changes_nothing(api):
    """The request's email is one address, a string; a one-item list was kept as Python's text
    of the list (["['admin@a4.test']"]), on AddDomain and ReverifyDomain alike."""
    before = api.get("clients/1/domains", params={"limit": 1000}).json()["domains"]
    for email in (["admin@list.example"], ["admin@list.example", "x@list.example"], 5, {}):
        method = {"emailSource": "SPECIFIED", "email": email}
        body = {"domainName": "list.example", "verificationMethod": "EMAIL"}
        added = api.post("clients/1/domains", {**body, "emailMethod": method})
        assert_error(added, 400, "emailMethod.email")
        redo = {"verificationMethod": "EMAIL", "emailMethod": method}
        assert_error(api.put("clients/1/domains/example.com", redo), 400, "emailMethod.email")
    assert api.get("clients/1/domains", params={"limit": 1000}).json()["domains"] == before


def test_add_client_then_read_it(api):
    response = api.post("clients", {"clientName": "Acme", "address": {"country": "US"}})
    assert response.headers["Location"] == "/clients/4/"
    client = api.get("clients/4").json()
    assert api.get("clients/4/").json() == client  # the Location as given
    assert client["verificationStatus"] == "PENDING"
    assert_error(api.order("www.example.com", clientId=4), 400, "clientId")


def test_a_new_client_shows_only_the_fields_of_the_spec(api):
    """AddClient ignores what its schema does not name, so GET /clients and GET /clients/{id}
    show a client in the spec's shape, not an echo of the request body."""
    body = {
        "clientName": "Shape Ltd",
        "friendlyClientName": "Shape",
        "address": {"city": "Paris", "country": "FR", "region": "IDF", "street2": None},
        "authContact": {"name": "Jo Ng", "emailAddress": "jo@example.fr", "title": "CEO"},
        "verificationStatus": "APPROVED",
    }
    location = api.post("clients", body).headers["Location"]
    detail = api.get(location.lstrip("/"))
    schema.check(detail, "/clients/{clientId}", "GET")
    assert detail.json()["address"] == {"city": "Paris", "country": "FR"}
    assert detail.json()["authContact"] == {"name": "Jo Ng", "emailAddress": "jo@example.fr"}
    assert detail.json()["verificationStatus"] == "PENDING"
    schema.check(api.get("clients"), "/clients", "GET")


def test_a_new_client_with_fields_of_the_wrong_kind_is_refused(api):
    before = api.get("clients").json()
    for bad, field in (
        ({"friendlyClientName": 5}, "friendlyClientName"),
        ({"address": "Paris"}, "address"),
        ({"address": {"city": ["Paris"]}}, "address.city"),
        ({"authContact": {"phone": 5550100}}, "authContact.phone"),
        ({"authContact": {"emailAddress": "not an address"}}, "authContact.emailAddress"),
    ):
        assert_error(api.post("clients", {"clientName": "Wrong Ltd", **bad}), 400, field)
    assert api.get("clients").json() == before


def test_a_client_name_that_is_no_text_is_named_as_such(api):
    """A number, a list or an object as clientName is "must be a string", as friendlyClientName
    is (it said "clientName is required", which it was given); absent or blank is required."""
    before = api.get("clients").json()
    for name in (5, ["Wrong Ltd"], {"name": "Wrong Ltd"}, True):
        body = assert_error(api.post("clients", {"clientName": name}), 400, "clientName")
        assert body["errors"][0]["message"] == "clientName must be a string", name
    for body in ({}, {"clientName": None}, {"clientName": "  "}):
        error = assert_error(api.post("clients", body), 400, "clientName")["errors"][0]
        assert error["message"] == "clientName is required", body
    assert api.get("clients").json() == before


def test_async_order(api):
    csr, _ = make_csr("www.example.com")
    response = api.post("async/certificates", {"certType": "STANDARD_SSL", "csr": csr})
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.startswith("/async/jobs/")
    job = api.get(location.lstrip("/"))
    schema.check(job, "/async/jobs/{jobId}", "GET")
    assert job.json()["status"] == "SUCCESS"
    tracking_id = int(job.json()["resourceLocation"].rsplit("/", 1)[1])
    assert api.get(f"certificates/{tracking_id}").json()["status"] == "ACTIVE"
    failed = api.post("async/certificates", {"certType": "STANDARD_SSL", "csr": "nope"})
    error_job = api.get(failed.headers["Location"].lstrip("/"))
    schema.check(error_job, "/async/jobs/{jobId}", "GET")
    assert error_job.json()["status"] == "ERROR"
    assert_error(api.get("async/jobs/unknown"), 404)
    # A body that is no JSON object is refused at once, with no job (the spec's 400).
    for raw in (b"", b"not json", b"[1, 2]"):
        refused = api.session.post(api.base + "async/certificates", data=raw, timeout=30)
        assert_error(refused, 400)
        assert "Location" not in refused.headers


def test_tracking_id_with_leading_zero_in_path(api):
    assert api.get("certificates/05000001").json()["trackingId"] == 5000001


def test_suspend_from_ready(api):
    ready = api.get("certificates", params={"status": "READY", "limit": 1}).json()
    tracking_id = ready["certificates"][0]["trackingId"]
    assert api.patch(f"certificates/{tracking_id}", {"operation": "SUSPEND"}).status_code == 200


def test_method_not_allowed_has_envelope(api):
    assert_error(api.session.delete(api.base + "certificates", timeout=10), 405)


def test_concurrent_orders_get_unique_ids(sb):
    from .conftest import Api

    results, lock = [], threading.Lock()

    def worker():
        client = Api(sb)
        for _ in range(5):
            response = client.order("www.example.com")
            with lock:
                results.append((response.status_code, response.json()["trackingId"]))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {code for code, _ in results} == {201}
    assert len({tid for _, tid in results}) == 30


def test_concurrent_first_reads_see_one_pem(sb):
    from .conftest import Api

    row = sb.sandbox.store.query_one(
        "SELECT tracking_id FROM certificates WHERE status = 'ACTIVE' AND cert_pem IS NULL "
        "AND tracking_id > 0 LIMIT 1"
    )
    pems, lock = [], threading.Lock()

    def read():
        pem = Api(sb).get(f"certificates/{row['tracking_id']}").json()["endEntityCert"]
        with lock:
            pems.append(pem)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(pems)) == 1


def test_domain_validations_run_out_with_time(api, sb):
    def example_com():
        [row] = api.get("clients/1/domains", params={"domainName": "example.com"}).json()["domains"]
        return row

    assert example_com()["verificationStatus"] == "APPROVED"  # seeded 397 days from expiry
    sb.advance_clock(320)  # 77 days left: within 90
    assert example_com()["verificationStatus"] == "EXPIRING"
    assert api.order("www.example.com").status_code == 201  # still usable
    expiring = api.get("domains", params={"verificationStatus": "EXPIRING"}).json()["domains"]
    assert ("example.com", 1) in {(d["domainName"], d["clientId"]) for d in expiring}
    sb.advance_clock(80)  # past the OV expiry
    row = example_com()
    assert row["verificationStatus"] == "EXPIRED" and row["ovEligible"] is False
    assert_error(api.order("www.example.com"), 400, "subjectAltName")
    single = api.get("clients/1/domains/example.com").json()
    assert single["verificationStatus"] == "EXPIRED"
    # A domain never approved does not expire: it has no validation to run out.
    pending = api.get("clients/1/domains/pending.example").json()
    assert pending["verificationStatus"] == "INITIAL_VERIFICATION"
