"""The pure decision policy: contact policy, consent and channel choice.

Plain Python + numpy + pydantic; the one I/O is reading the policy's TOML file
(:mod:`app.policy.config`). The pipeline loads a user's policy state (:mod:`app.policy.state`)
and consent (:mod:`app.policy.consent`), calls :func:`app.policy.decision.decide`, and stores
what it returns with the user's write.
"""
