"""Shopify's Admin GraphQL API on graphql-core: parse, validate, cost, execute.

The schema is the SDL excerpt ``admin_2026_10.graphql`` (Shopify's names,
types and nullability); graphql-core, the Python port of the reference
implementation, parses, validates and executes against it, so a wrong field,
argument, enum or variable type is refused as GraphQL specifies. Resolvers
come from :mod:`.schema` and read the :class:`~.store.ShopifyStore`.

Two things are Shopify's own and done here:

- error shapes: Shopify's server (graphql-ruby) words validation errors its
  own way and names them with ``extensions.code`` (``undefinedField``,
  ``argumentLiteralsIncompatible``, ``variableMismatch``,
  ``missingRequiredArguments``, ``INVALID_VARIABLE``...); each rule of
  graphql-core is wrapped to report its error in those words;
- cost: a scalar or enum field costs 0, an object 1, a connection 2 plus, per
  node asked for (``first`` / ``last``), 1 and the node's selection; a
  mutation costs 10. The requested cost is computed from the query before it
  runs, the actual cost from what came back.
"""

import base64
import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import SimpleNamespace

import graphql as gql
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_argument_values, get_directive_values

SDL_PATH = Path(__file__).with_name("admin_2026_10.graphql")
MUTATION_COST = 10
MAX_PAGE_SIZE = 250


class GraphQLError(gql.GraphQLError):
    """An error a resolver raises: Shopify's ``extensions.code`` and extra keys."""

    def __init__(self, message, *, code=None, path=None, **extensions):
        if code:
            extensions = {"code": code, **extensions}
        super().__init__(message, path=path, extensions=extensions or None)


class GraphQLErrors(Exception):
    """Errors that stop a request before it runs (syntax, validation, variables):
    ``errors`` holds them as the response's ``errors`` entries."""

    def __init__(self, errors):
        super().__init__("; ".join(e["message"] for e in errors))
        self.errors = errors


# --- scalars ----------------------------------------------------------------------


def _decimal_input(value):
    """Money and Decimal input: a decimal as a string or a number (as Shopify accepts)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise GraphQLError(f"Could not coerce value {json.dumps(value, default=str)} to a decimal")
    try:
        Decimal(str(value))
    except InvalidOperation as exc:
        raise GraphQLError(f"Could not coerce value {json.dumps(value)} to a decimal") from exc
    return value


def _decimal_literal(node, _variables=None):
    if isinstance(node, gql.StringValueNode | gql.IntValueNode | gql.FloatValueNode):
        return _decimal_input(node.value)
    raise GraphQLError(f"{gql.print_ast(node)} is not a decimal")


def _string_input(value):
    if not isinstance(value, str):
        raise GraphQLError(f"Could not coerce value {json.dumps(value, default=str)} to a string")
    return value


def _string_literal(node, _variables=None):
    if isinstance(node, gql.StringValueNode):
        return node.value
    raise GraphQLError(f"{gql.print_ast(node)} is not a string")


def _date_time(value):
    return value if isinstance(value, str) else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# name: (serialize, parse_value, parse_literal); JSON keeps graphql-core's defaults.
SCALARS = {
    # Shopify writes money and decimals as strings ("29.99"), never as numbers.
    "Money": (str, _decimal_input, _decimal_literal),
    "Decimal": (str, _decimal_input, _decimal_literal),
    "DateTime": (_date_time, _string_input, _string_literal),
    "URL": (str, _string_input, _string_literal),
    "HTML": (str, _string_input, _string_literal),
    # 64-bit integers travel as strings: JSON numbers lose precision past 2**53.
    "UnsignedInt64": (lambda v: str(int(v)), _string_input, _string_literal),
}


# --- pagination -------------------------------------------------------------------


@dataclass
class Page:
    """One page of a connection: nodes with their cursors and page info.

    A connection type's ``edges``, ``nodes`` and ``pageInfo`` resolve from
    these attributes.
    """

    nodes: list
    cursors: list
    has_next: bool
    has_previous: bool

    @property
    def edges(self):
        return [
            {"cursor": cursor, "node": node}
            for node, cursor in zip(self.nodes, self.cursors, strict=True)
        ]

    @property
    def pageInfo(self):
        return {
            "hasNextPage": self.has_next,
            "hasPreviousPage": self.has_previous,
            "startCursor": self.cursors[0] if self.cursors else None,
            "endCursor": self.cursors[-1] if self.cursors else None,
        }


def encode_cursor(key):
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return tuple(json.loads(base64.urlsafe_b64decode(padded.encode())))
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort. {cursor!r}") from exc


def paginate(items, args, key):
    """A page of ``items`` under first/after/last/before/reverse.

    ``key(item)`` is the item's position in the sort order and must be unique
    (sort value, then id): a cursor names a position, not an index, so paging
    stays right when items are inserted or updated meanwhile, and resumes after
    an item that left the list.
    """
    first, last = args.get("first"), args.get("last")
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The '{name}' argument must be between 0 and {MAX_PAGE_SIZE}.",
                code="BAD_REQUEST",
            )
    reverse = bool(args.get("reverse"))
    ordered = sorted(items, key=key, reverse=reverse)
    keys = [tuple(key(item)) for item in ordered]

    def past(candidate, cursor):
        return candidate < cursor if reverse else candidate > cursor

    start, end = 0, len(ordered)
    if args.get("after"):
        after = decode_cursor(args["after"])
        start = next((i for i, k in enumerate(keys) if past(k, after)), len(ordered))
    if args.get("before"):
        before = decode_cursor(args["before"])
        end = next((i for i, k in enumerate(keys) if not past(before, k)), len(ordered))
        end = max(end, start)
    window = list(range(start, end))
    has_next = end < len(ordered)
    has_previous = start > 0
    if first is not None and len(window) > first:
        window, has_next = window[:first], True
    if last is not None and len(window) > last:
        window, has_previous = window[-last:], True
    return Page(
        [ordered[i] for i in window],
        [encode_cursor(keys[i]) for i in window],
        has_next,
        has_previous,
    )


# --- Shopify's validation errors ----------------------------------------------------


class _Rewording:
    """A rule's view of the validation context that rewords its errors as Shopify does."""

    def __init__(self, context, rule):
        self._context = context
        self._rule = rule

    def __getattr__(self, name):
        return getattr(self._context, name)

    def report_error(self, error):
        rewritten = self._rule.shopify_error(error)
        if rewritten is not None:
            message, extensions, *nodes = rewritten
            self._context.report_error(
                gql.GraphQLError(message, nodes[0] if nodes else error.nodes, extensions=extensions)
            )


class _Tracking:
    """Mixin of a validation rule: where the visit stands (field or directive,
    argument, variable definition), so that errors can name them as Shopify does."""

    def __init__(self, context):
        # Rules report through their context, some directly: a context of our
        # own rewords every report.
        super().__init__(_Rewording(context, self))
        self.owners = []  # ("Field" | "Directive", name)
        self.arguments = []  # (argument node, its definition)
        self.variable = None  # the variable definition being visited
        self.variable_arguments = {}  # id(variable node) -> argument or input field name
        self.variable_types = {}  # id(named type node) -> variable name
        self.reported = set()

    def _chain(self, method, node, *args):
        parent = getattr(super(), method, None)
        return parent(node, *args) if parent else None

    def enter_field(self, node, *args):
        self.owners.append(("Field", node.name.value))
        return self._chain("enter_field", node, *args)

    def leave_field(self, node, *args):
        self.owners.pop()
        return self._chain("leave_field", node, *args)

    def enter_directive(self, node, *args):
        self.owners.append(("Directive", node.name.value))
        return self._chain("enter_directive", node, *args)

    def leave_directive(self, node, *args):
        self.owners.pop()
        return self._chain("leave_directive", node, *args)

    def enter_argument(self, node, *args):
        self.arguments.append((node, self.context.get_argument()))
        self._map_variables(node.name.value, node.value)
        return self._chain("enter_argument", node, *args)

    def leave_argument(self, node, *args):
        self.arguments.pop()
        return self._chain("leave_argument", node, *args)

    def enter_variable_definition(self, node, *args):
        self.variable = node
        type_node = node.type
        while not isinstance(type_node, gql.NamedTypeNode):
            type_node = type_node.type
        self.variable_types[id(type_node)] = node.variable.name.value
        return self._chain("enter_variable_definition", node, *args)

    def leave_variable_definition(self, node, *args):
        self.variable = None
        return self._chain("leave_variable_definition", node, *args)

    def _map_variables(self, name, value):
        if isinstance(value, gql.VariableNode):
            self.variable_arguments[id(value)] = name
        elif isinstance(value, gql.ListValueNode):
            for item in value.values:
                self._map_variables(name, item)
        elif isinstance(value, gql.ObjectValueNode):
            for field_node in value.fields:
                self._map_variables(field_node.name.value, field_node.value)

    def shopify_error(self, error):
        """Shopify's (message, extensions) for a graphql-core error, None to drop it."""
        code = RULE_CODES.get(type(self).__name__, "validationError")
        for pattern, rewrite in REWRITES.get(type(self).__name__, ()):
            match = re.match(pattern, error.message)
            if match:
                return rewrite(self, error, **match.groupdict())
        return error.message, {"code": code}


def _on(owner_kind, owner):
    return f"{owner_kind} '{owner}'"


def _invalid_literal(rule, error, **_groups):
    if not rule.arguments:
        if rule.variable is not None:
            name = rule.variable.variable.name.value
            type_text = gql.print_ast(rule.variable.type)
            return (
                f"Default value for ${name} doesn't match type {type_text}",
                {"code": "defaultValueInvalidType", "variableName": name, "typeName": type_text},
            )
        return error.message, {"code": "argumentLiteralsIncompatible"}
    argument, definition = rule.arguments[-1]
    if id(argument) in rule.reported:
        return None  # one error per argument, as Shopify reports them
    rule.reported.add(id(argument))
    owner_kind, owner = rule.owners[-1]
    name = argument.name.value
    expected = f" Expected type '{definition.type}'." if definition else ""
    return (
        f"Argument '{name}' on {_on(owner_kind, owner)} has an invalid value "
        f"({gql.print_ast(argument.value)}).{expected}",
        {"code": "argumentLiteralsIncompatible", "typeName": owner_kind, "argumentName": name},
        [argument],
    )


def _variable_mismatch(rule, error, variable, given, expected):
    usage = error.nodes[-1] if error.nodes else None
    argument = rule.variable_arguments.get(id(usage), variable)
    kind = "Nullability mismatch" if given.rstrip("!") == expected.rstrip("!") else "Type mismatch"
    return (
        f"{kind} on variable ${variable} and argument {argument} ({given} / {expected})",
        {
            "code": "variableMismatch",
            "variableName": variable,
            "typeName": given,
            "argumentName": argument,
            "errorMessage": kind,
        },
    )


def _selections(error):
    """The names selected on a leaf, as Shopify lists them: ``[x, y]``."""
    node = error.nodes[0] if error.nodes else None
    if not isinstance(node, gql.SelectionSetNode):
        node = getattr(node, "selection_set", None)
    selections = node.selections if node else ()
    return f"[{', '.join(s.name.value for s in selections if hasattr(s, 'name'))}]"


def _unknown_type(rule, error, type_name):
    node = error.nodes[0] if error.nodes else None
    variable = rule.variable_types.get(id(node))
    if variable:
        return (
            f"{type_name} isn't a defined input type (on ${variable})",
            {"code": "variableRequiresValidType", "typeName": type_name, "variableName": variable},
        )
    return (
        f"No such type {type_name}, so it can't be a fragment condition",
        {"code": "undefinedType", "typeName": type_name},
    )


def _operation(name):
    return name or "anonymous query"


REWRITES = {
    "FieldsOnCorrectTypeRule": [
        (
            r"Cannot query field '(?P<field>\w+)' on type '(?P<type_name>\w+)'",
            lambda rule, error, field, type_name: (
                f"Field '{field}' doesn't exist on type '{type_name}'",
                {"code": "undefinedField", "typeName": type_name, "fieldName": field},
            ),
        )
    ],
    "KnownArgumentNamesRule": [
        (
            r"Unknown argument '(?P<argument>\w+)' on field '\w+\.(?P<owner>\w+)'",
            lambda rule, error, argument, owner: (
                f"Field '{owner}' doesn't accept argument '{argument}'",
                {
                    "code": "argumentNotAccepted",
                    "name": owner,
                    "typeName": "Field",
                    "argumentName": argument,
                },
            ),
        ),
        (
            r"Unknown argument '(?P<argument>\w+)' on directive '@(?P<owner>\w+)'",
            lambda rule, error, argument, owner: (
                f"Directive '{owner}' doesn't accept argument '{argument}'",
                {
                    "code": "argumentNotAccepted",
                    "name": owner,
                    "typeName": "Directive",
                    "argumentName": argument,
                },
            ),
        ),
    ],
    "ProvidedRequiredArgumentsRule": [
        (
            r"(?P<kind>Field|Directive) '@?(?P<owner>\w+)' argument '(?P<argument>\w+)'",
            lambda rule, error, kind, owner, argument: (
                f"{kind} '{owner}' is missing required arguments: {argument}",
                {
                    "code": "missingRequiredArguments",
                    "className": kind,
                    "name": owner,
                    "arguments": argument,
                },
            ),
        )
    ],
    "ValuesOfCorrectTypeRule": [(r"", _invalid_literal)],
    "VariablesInAllowedPositionRule": [
        (
            r"Variable '\$(?P<variable>\w+)' of type '(?P<given>[^']+)' used in position "
            r"expecting type '(?P<expected>[^']+)'",
            _variable_mismatch,
        )
    ],
    "ScalarLeafsRule": [
        (
            r"Field '(?P<field>\w+)' must not have a selection since type '(?P<type_name>[^']+)'",
            lambda rule, error, field, type_name: (
                f"Selections can't be made on scalars (field '{field}' returns {type_name} "
                f"but has selections {_selections(error)})",
                {
                    "code": "selectionMismatch",
                    "nodeName": f"field '{field}'",
                    "typeName": type_name,
                },
            ),
        ),
        (
            r"Field '(?P<field>\w+)' of type '(?P<type_name>[^']+)' must have a selection",
            lambda rule, error, field, type_name: (
                f"Field must have selections (field '{field}' returns {type_name} but has no "
                f"selections. Did you mean '{field} {{ ... }}'?)",
                {
                    "code": "selectionMismatch",
                    "nodeName": f"field '{field}'",
                    "typeName": type_name,
                },
            ),
        ),
    ],
    "NoUndefinedVariablesRule": [
        (
            r"Variable '\$(?P<variable>\w+)' is not defined(?: by operation '(?P<op>\w+)')?",
            lambda rule, error, variable, op: (
                f"Variable ${variable} is used by {_operation(op)} but not declared",
                {"code": "variableNotDefined", "variableName": variable},
            ),
        )
    ],
    "NoUnusedVariablesRule": [
        (
            r"Variable '\$(?P<variable>\w+)' is never used(?: in operation '(?P<op>\w+)')?",
            lambda rule, error, variable, op: (
                f"Variable ${variable} is declared by {_operation(op)} but not used",
                {"code": "variableNotUsed", "variableName": variable},
            ),
        )
    ],
    "KnownTypeNamesRule": [(r"Unknown type '(?P<type_name>\w+)'", _unknown_type)],
    "VariablesAreInputTypesRule": [
        (
            r"Variable '\$(?P<variable>\w+)' cannot be non-input type '(?P<type_name>[^']+)'",
            lambda rule, error, variable, type_name: (
                f"{type_name} isn't a valid input type (on ${variable})",
                {
                    "code": "variableRequiresValidType",
                    "typeName": type_name,
                    "variableName": variable,
                },
            ),
        )
    ],
    "KnownDirectivesRule": [
        (
            r"Unknown directive '@(?P<name>\w+)'",
            lambda rule, error, name: (
                f"Directive @{name} is not defined",
                {"code": "undefinedDirective", "directiveName": name},
            ),
        )
    ],
    "KnownFragmentNamesRule": [
        (
            r"Unknown fragment '(?P<name>\w+)'",
            lambda rule, error, name: (
                f"Fragment {name} was used, but not defined",
                {"code": "useAndDefineFragment", "fragmentName": name},
            ),
        )
    ],
    "NoUnusedFragmentsRule": [
        (
            r"Fragment '(?P<name>\w+)' is never used",
            lambda rule, error, name: (
                f"Fragment {name} was defined, but not used",
                {"code": "useAndDefineFragment", "fragmentName": name},
            ),
        )
    ],
    "PossibleFragmentSpreadsRule": [
        (
            r"Fragment (?:'(?P<name>\w+)' )?cannot be spread here as objects of type "
            r"'(?P<parent>\w+)' can never be of type '(?P<condition>\w+)'",
            lambda rule, error, name, parent, condition: (
                f"Fragment {name + ' ' if name else ''}on {condition} can't be spread "
                f"inside {parent}",
                {"code": "cannotSpreadFragment", "typeName": condition, "parentName": parent},
            ),
        )
    ],
    "LoneAnonymousOperationRule": [
        (
            r"",
            lambda rule, error: (
                "Operation name is required when multiple operations are present",
                {"code": "uniquelyNamedOperations"},
            ),
        )
    ],
}

RULE_CODES = {
    "UniqueOperationNamesRule": "uniquelyNamedOperations",
    "OverlappingFieldsCanBeMergedRule": "fieldConflict",
    "UniqueArgumentNamesRule": "argumentUniqueness",
    "UniqueInputFieldNamesRule": "inputFieldUniqueness",
    "UniqueVariableNamesRule": "variableUniqueness",
    "UniqueDirectivesPerLocationRule": "directiveNotUniqueForLocation",
    "NoFragmentCyclesRule": "infiniteLoop",
    "FragmentsOnCompositeTypesRule": "fragmentOnNonCompositeType",
    "UniqueFragmentNamesRule": "fragmentNamesUnique",
}


def _shopify_rule(rule):
    return type(rule.__name__, (_Tracking, rule), {})


RULES = tuple(_shopify_rule(rule) for rule in gql.specified_rules)


def _parse_error(exc):
    """Shopify's words for a syntax error: ``Parse error on "}" at [1, 15]``."""
    location = exc.locations[0] if exc.locations else None
    found = re.search(r"found (.+?)\.?$", exc.message)
    token = found.group(1) if found else "input"
    token = "end of file" if token == "<EOF>" else f'"{token.strip(chr(39))}"'
    error = {"message": f"Parse error on {token}"}
    if location:
        error["message"] += f" at [{location.line}, {location.column}]"
        error["locations"] = [{"line": location.line, "column": location.column}]
    return error


# --- variables ----------------------------------------------------------------------


def _explanation(schema, error, value):
    """graphql-ruby's explanation of a variable value problem."""
    message = error.message
    if " is not defined by type " in message:
        type_name = re.search(r"by type '(\w+)'", message).group(1)
        return f"Field is not defined on {type_name}"
    if "was not provided" in message or "not to be null" in message:
        return "Expected value to not be null"
    enum = re.search(r"does not exist in '(\w+)' enum", message)
    if enum:
        values = ", ".join(schema.get_type(enum.group(1)).values)
        return f"Expected {json.dumps(value, default=str)} to be one of: {values}"
    scalar = re.match(r"(?:Expected type '(\w+)'|(\w+) cannot represent)", message)
    if scalar:
        type_name = scalar.group(1) or scalar.group(2)
        return f"Could not coerce value {json.dumps(value, default=str)} to {type_name}"
    return message


def _variable_errors(schema, operation, given):
    """Shopify's INVALID_VARIABLE errors for values that do not fit their declared type."""
    errors = []
    for definition in operation.variable_definitions:
        name = definition.variable.name.value
        type_ = gql.type_from_ast(schema, definition.type)
        type_text = gql.print_ast(definition.type)
        problems = []
        if given.get(name) is None:
            if gql.is_non_null_type(type_) and definition.default_value is None:
                problems.append({"path": [], "explanation": "Expected value to not be null"})
        else:

            def on_error(path, invalid, error, problems=problems):
                path = list(path)
                missing = re.match(r"Field '(?:\w+\.)?(\w+)' of required type", error.message)
                unknown = re.match(r"Field '(\w+)' is not defined by type", error.message)
                if missing or unknown:
                    path.append((missing or unknown).group(1))
                problems.append({"path": path, "explanation": _explanation(schema, error, invalid)})

            gql.utilities.coerce_input_value(given[name], type_, on_error)
        if problems:
            details = ", ".join(
                f"for {'.'.join(str(p) for p in problem['path'])} ({problem['explanation']})"
                for problem in problems
                if problem["path"]
            )
            location = definition.loc.source.get_location(definition.loc.start)
            errors.append(
                {
                    "message": f"Variable ${name} of type {type_text} was provided invalid value"
                    + (f" {details}" if details else ""),
                    "locations": [{"line": location.line, "column": location.column}],
                    "extensions": {
                        "code": "INVALID_VARIABLE",
                        "value": given.get(name),
                        "problems": problems,
                    },
                }
            )
    return errors


# --- resolvers ----------------------------------------------------------------------


class Info:
    """What a resolver of :mod:`.schema` gets besides its parent and arguments."""

    def __init__(self, info):
        self.raw = info
        self.context = info.context
        self.node = SimpleNamespace(name=info.field_name, key=info.path.key)

    @property
    def directives(self):
        """Directives on the field, by name, with their arguments' values."""
        field_node = self.raw.field_nodes[0]
        return {
            directive.name.value: get_directive_values(
                self.raw.schema.get_directive(directive.name.value),
                field_node,
                self.raw.variable_values,
            )
            for directive in field_node.directives
        }


def _adapt(resolve):
    def resolver(parent, info, **args):
        return resolve(parent, args, Info(info))

    return resolver


def build_schema(resolvers):
    """The schema of the SDL with ``resolvers``: ``{type: {field: resolve(parent, args, info)}}``.

    A field without a resolver reads its parent's key of the same name. A
    resolver for a field the SDL lacks is a mistake: it fails here.
    """
    schema = gql.build_schema(SDL_PATH.read_text())
    for name, (serialize, parse_value, parse_literal) in SCALARS.items():
        scalar = schema.get_type(name)
        scalar.serialize, scalar.parse_value, scalar.parse_literal = (
            serialize,
            parse_value,
            parse_literal,
        )
    for type_name, fields in resolvers.items():
        type_ = schema.get_type(type_name)
        if type_ is None:
            raise KeyError(f"type {type_name} is not in {SDL_PATH.name}")
        for field_name, resolve in fields.items():
            if field_name not in type_.fields:
                raise KeyError(f"field {type_name}.{field_name} is not in {SDL_PATH.name}")
            type_.fields[field_name].resolve = _adapt(resolve)
    return schema


# --- requests -------------------------------------------------------------------------


@dataclass
class Prepared:
    """A parsed, validated operation with its variables and requested cost."""

    document: gql.DocumentNode
    operation: gql.OperationDefinitionNode
    variables: dict
    requested_cost: int = 0

    @property
    def kind(self):
        return self.operation.operation.value

    @property
    def fragments(self):
        return {
            d.name.value: d
            for d in self.document.definitions
            if isinstance(d, gql.FragmentDefinitionNode)
        }

    @property
    def root_fields(self):
        return [s.name.value for s in self.operation.selection_set.selections if hasattr(s, "name")]


def operation_names(source):
    """``graphql:<query|mutation>`` and ``graphql:<root field>`` names of a request's
    operations (to aim faults at), or [] when it does not parse."""
    try:
        document = gql.parse(source)
    except (gql.GraphQLError, TypeError):
        return []
    names = []
    for definition in document.definitions:
        if isinstance(definition, gql.OperationDefinitionNode):
            names.append(f"graphql:{definition.operation.value}")
            names.extend(
                f"graphql:{s.name.value}"
                for s in definition.selection_set.selections
                if hasattr(s, "name")
            )
    return names


def _is_connection(type_):
    return isinstance(type_, gql.GraphQLObjectType) and {"edges", "pageInfo"} <= set(type_.fields)


class Executor:
    """Runs requests against a schema made by :func:`build_schema`."""

    def __init__(self, schema):
        self.schema = schema

    def prepare(self, source, variables=None, operation_name=None):
        """Parse, validate, check the variables, cost; raises :class:`GraphQLErrors`."""
        if not source or not isinstance(source, str):
            raise GraphQLErrors([{"message": "No query string was present"}])
        try:
            document = gql.parse(source)
        except gql.GraphQLSyntaxError as exc:
            raise GraphQLErrors([_parse_error(exc)]) from exc
        errors = gql.validate(self.schema, document, RULES)
        if errors:
            raise GraphQLErrors([e.formatted for e in errors])
        operation = gql.utilities.get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f'No operation named "{operation_name}"'
                if operation_name
                else "An operation name is required"
            )
            raise GraphQLErrors([{"message": message}])
        if variables is not None and not isinstance(variables, dict):
            raise GraphQLErrors([{"message": "Variables must be an object"}])
        variables = variables or {}
        errors = _variable_errors(self.schema, operation, variables)
        if errors:
            raise GraphQLErrors(errors)
        prepared = Prepared(document, operation, variables)
        if prepared.kind == "mutation":
            prepared.requested_cost = MUTATION_COST * len(
                self._fields(prepared, self.schema.mutation_type, [operation.selection_set])
            )
        else:
            prepared.requested_cost = self._requested(
                prepared, self.schema.query_type, [operation.selection_set]
            )
        return prepared

    def execute(self, prepared, context):
        """Run the operation: (data, errors as dicts, actual cost)."""
        result = gql.execute(
            self.schema,
            prepared.document,
            root_value={},
            context_value=context,
            variable_values=prepared.variables,
            operation_name=(prepared.operation.name.value if prepared.operation.name else None),
        )
        for error in result.errors or []:
            # Errors Shopify gives are raised as GraphQLError by the resolvers;
            # anything else (a resolver's bug, a null or an enum value the SDL
            # does not allow) is the simulator's fault: a 500, as before.
            if error.original_error is not None and not isinstance(
                error.original_error, GraphQLError
            ):
                raise error.original_error
        errors = [e.formatted for e in result.errors or []]
        if prepared.kind == "mutation":
            return result.data, errors, prepared.requested_cost
        root = self.schema.query_type
        actual = self._actual(prepared, root, [prepared.operation.selection_set], result.data)
        return result.data, errors, actual

    # --- cost ---------------------------------------------------------------------------

    def _fields(self, prepared, object_type, selection_sets):
        """Field nodes by response key selected on ``object_type`` (fragments expanded)."""
        fields = {}
        for selection_set in selection_sets:
            if selection_set is None:
                continue
            found = collect_fields(
                self.schema, prepared.fragments, prepared.variables, object_type, selection_set
            )
            for key, nodes in found.items():
                fields.setdefault(key, []).extend(nodes)
        return fields

    def _concrete(self, type_):
        """An abstract type is costed as its most expensive possible type."""
        if gql.is_abstract_type(type_):
            return self.schema.get_possible_types(type_)
        return [type_]

    def _requested(self, prepared, type_, selection_sets):
        best = 0
        for concrete in self._concrete(type_):
            total = 0
            for nodes in self._fields(prepared, concrete, selection_sets).values():
                name = nodes[0].name.value
                if name.startswith("__"):
                    continue
                definition = concrete.fields[name]
                named = gql.get_named_type(definition.type)
                if gql.is_leaf_type(named):
                    continue
                children = [n.selection_set for n in nodes]
                if _is_connection(named):
                    args = get_argument_values(definition, nodes[0], prepared.variables)
                    size = args.get("first") or args.get("last") or 0
                    total += 2 + size * (1 + self._node_cost(prepared, named, children))
                else:
                    total += 1 + self._requested(prepared, named, children)
            best = max(best, total)
        return best

    def _node_cost(self, prepared, connection, selection_sets):
        """Requested cost of one node of ``connection`` (via ``nodes`` or ``edges.node``)."""
        node_type = gql.get_named_type(connection.fields["nodes"].type)
        edge_type = gql.get_named_type(connection.fields["edges"].type)
        best = 0
        for nodes in self._fields(prepared, connection, selection_sets).values():
            children = [n.selection_set for n in nodes]
            if nodes[0].name.value == "nodes":
                best = max(best, self._requested(prepared, node_type, children))
            elif nodes[0].name.value == "edges":
                for edge_nodes in self._fields(prepared, edge_type, children).values():
                    if edge_nodes[0].name.value == "node":
                        inner = [n.selection_set for n in edge_nodes]
                        best = max(best, self._requested(prepared, node_type, inner))
        return best

    def _actual(self, prepared, type_, selection_sets, value):
        """Cost of what came back: objects returned, connection nodes returned."""
        if not isinstance(value, dict):
            return 0
        best = 0
        for concrete in self._concrete(type_):
            total = 0
            for key, nodes in self._fields(prepared, concrete, selection_sets).items():
                name = nodes[0].name.value
                child = value.get(key)
                if name.startswith("__") or child is None:
                    continue
                named = gql.get_named_type(concrete.fields[name].type)
                if gql.is_leaf_type(named):
                    continue
                children = [n.selection_set for n in nodes]
                if _is_connection(named):
                    total += 2 + self._connection_actual(prepared, named, children, child)
                elif isinstance(child, list):
                    # Costed like the request: once, at its most expensive item.
                    costs = [self._actual(prepared, named, children, item) for item in child]
                    total += 1 + max(costs, default=0)
                else:
                    total += 1 + self._actual(prepared, named, children, child)
            best = max(best, total)
        return best

    def _connection_actual(self, prepared, connection, selection_sets, value):
        node_type = gql.get_named_type(connection.fields["nodes"].type)
        edge_type = gql.get_named_type(connection.fields["edges"].type)
        count, inner = 0, 0
        for key, nodes in self._fields(prepared, connection, selection_sets).items():
            children = [n.selection_set for n in nodes]
            items = value.get(key) or []
            if nodes[0].name.value == "nodes":
                count = max(count, len(items))
                inner += sum(self._actual(prepared, node_type, children, i) for i in items)
            elif nodes[0].name.value == "edges":
                count = max(count, len(items))
                for edge_key, edge_nodes in self._fields(prepared, edge_type, children).items():
                    if edge_nodes[0].name.value == "node":
                        node_sets = [n.selection_set for n in edge_nodes]
                        inner += sum(
                            self._actual(prepared, node_type, node_sets, (e or {}).get(edge_key))
                            for e in items
                        )
        return count + inner
