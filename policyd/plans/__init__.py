"""Query plans for list endpoints: `Engine.plan` answers which resources of a type a
principal may act on; this package hands that answer to a database.

`to_sql` and `to_sql_columns` need nothing else; `policyd.plans.sqlalchemy` and
`policyd.plans.django` import their framework and are imported only when used.
"""

from ..engine.plan import ALWAYS_ALLOWED, ALWAYS_DENIED, CONDITIONAL, Plan
from .sql import DIALECTS, PlanUntranslatable, SqlWriter, default_columns, to_sql, to_sql_columns

__all__ = ["ALWAYS_ALLOWED", "ALWAYS_DENIED", "CONDITIONAL", "DIALECTS", "Plan",
           "PlanUntranslatable", "SqlWriter", "default_columns", "to_sql", "to_sql_columns"]
