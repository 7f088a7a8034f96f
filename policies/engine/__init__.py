"""How a tag rule is read and evaluated: the rule language (spec), the reference
semantics on one resource (reference, matching) and the SQL engine that evaluates
rules over the whole estate (sql); the hypothesis tests prove the two agree.
"""
