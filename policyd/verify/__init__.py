"""`policyd verify`: proofs over a checked set with an SMT solver (z3, the `verify`
extra). Importing `policyd` never imports this package: the CLI imports it when the
command runs (docs/verification.md)."""
