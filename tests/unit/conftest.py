from __future__ import annotations

import textwrap

import pytest

from langchain_secure import Guard, load_policy_text

POLICY = textwrap.dedent(
    """\
    name: unit-test policy
    default_persona: analyst
    labels:
      pii: the tool returns personal data
    personas:
      analyst:
        tools: [search, read_file, run_sql, send_email, fetch_url]
        max_calls_per_thread: 20
      support:
        tools:
          search: {}
          refund:
            max_calls_per_thread: 2
            approval:
              when:
                - args: {amount: {range: {min: 100}}}
          lookup_customer: {}
          send_email:
            args:
              to: {regex: '[a-z0-9._-]+@example\\.com'}
      intern:
        tools: [search]
    tools:
      read_file:
        labels: [reads_sensitive]
        args:
          path: {path: {allow: ["/srv/reports/**"], resolve_symlinks: false}}
      run_sql:
        args:
          query: {sql: read_only}
      send_email:
        labels: [egress]
        extra_args: deny
        args:
          to: {max_length: 200}
          subject: {max_length: 200, optional: true}
          body: {max_length: 5000}
      fetch_url:
        labels: [untrusted_source, egress]
        args:
          url: {url: {hosts: ["docs.example.com", "*.wikipedia.org"], schemes: [https]}}
      refund:
        labels: [writes]
        args:
          amount: {range: {min: 0, max: 1000}}
      lookup_customer:
        labels: [pii]
      search:
        max_calls_per_thread: 5
    flows:
      - id: no-exfiltration
        after: [reads_sensitive]
        then: [egress]
        action: require_approval
        reason: data read from reports may not leave without a person's approval
      - id: no-writes-after-untrusted
        after: [untrusted, untrusted_source]
        then: [writes]
        action: deny
      - id: pii-stays-in
        after: [pii]
        then: [egress]
        action: deny
        personas: [support]
    limits:
      max_calls_per_thread: 50
    """
)


@pytest.fixture
def policy_text() -> str:
    return POLICY


@pytest.fixture
def guard() -> Guard:
    return Guard(load_policy_text(POLICY, filename="unit.yaml"))


def call(name: str, id: str = "c1", **args: object) -> dict[str, object]:
    return {"name": name, "args": args, "id": id, "type": "tool_call"}
