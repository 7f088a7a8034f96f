"""What redact() removes before text reaches a provider, the database or the audit log, and
what it leaves alone."""

import pytest

from assistant.redact import redact


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("key AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP", "[REDACTED:AWS access key]"),
        ("use sk-proj-abcdefghijklmnop now", "abcdefghijklmnop", "[REDACTED:API key]"),
        ("ghp_" + "a" * 36, "a" * 36, "[REDACTED:GitHub token]"),
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl", "Authorization"),
        ("db_password=hunter2", "hunter2", "db_password=[REDACTED:secret]"),
        ("DB_PASSWORD = hunter2;", "hunter2", "DB_PASSWORD = [REDACTED:secret];"),
        ('{"api_key": "k-123", "name": "web"}', "k-123", '"api_key": "[REDACTED:secret]"'),
        ("aws_secret_access_key: wJalrXUtnFEMI/K7", "wJalrXUtnFEMI", "aws_secret_access_key: "),
        ("run app --password=hunter2 --port=80", "hunter2", "--port=80"),
        ("https://h.example/?x=1&token=abc123&y=2", "abc123", "token=[REDACTED:secret]"),
        ("tags: {'x.Private-Key': 'hunter2'}", "hunter2", "'x.Private-Key': '[REDACTED:secret]'"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "MIIB",
         "[REDACTED:private key]"),
    ],
)  # fmt: skip
def test_secrets_are_replaced_and_their_keys_kept(text, secret, kept):
    redacted = redact(text)

    assert secret not in redacted
    assert kept in redacted


@pytest.mark.parametrize(
    "text",
    [
        "Which production instances lack an Owner tag?",
        "tokens in: 120, tokens out: 40",  # "tokens" names no secret value here: no separator
        "Environment=prod, Owner=platform, CostCenter=cc-1234",
        "arn:aws:ec2:eu-west-1:210987654321:instance/i-0123456789abcdef0",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_a_key_inside_a_longer_word_is_still_a_secret_key():
    assert redact("MYAPP_DB_PASSWORD_V2=hunter2") == "MYAPP_DB_PASSWORD_V2=[REDACTED:secret]"
    assert redact("x=1 mytokenvalue: abc") == "x=1 mytokenvalue: [REDACTED:secret]"
