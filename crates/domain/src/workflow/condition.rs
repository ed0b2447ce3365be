//! Conditions: CEL expressions compiled when a definition is saved, checked against static
//! limits there, and evaluated with a budget.
//!
//! CEL has no loops that run forever, but its comprehensions (`all`, `exists`, `exists_one`,
//! `map`, `filter`) nest, and each level multiplies the work: five levels over 35-item lists are
//! 52 million iterations. So a condition is refused on save when its comprehensions nest more
//! than [`MAX_COMPREHENSION_NESTING`] deep or a literal list or map holds more than
//! [`MAX_LITERAL_ITEMS`] items, and every evaluation is metered: each iteration of a
//! comprehension is a step, and the evaluation stops at the first step past the
//! [`Budget`] (steps or time).
//!
//! An evaluation error never carries a value the condition saw (a name, a birthdate): it says
//! what went wrong and where in the expression, and names only types and what the expression
//! itself spells.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::value::CowVal;
use cel::{ExecutionError, FunctionContext};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// How deep comprehensions may nest: `a.all(x, b.all(y, c.all(z, …)))` is 3 deep.
pub const MAX_COMPREHENSION_NESTING: usize = 3;
/// The most items a list or map literal may hold.
pub const MAX_LITERAL_ITEMS: usize = 256;

/// The standard CEL environment, built once: every condition is compiled and run against it.
static CEL: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// The function that meters a comprehension's iterations. Its name cannot be written in CEL
/// (identifiers do not start with `@`), so no condition can call or shadow it.
const METER: &str = "@meter";

/// How much one evaluation may do before it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Iterations of comprehensions, all levels counted.
    pub steps: u64,
    /// Time from the start of the evaluation.
    pub time: Duration,
}

impl Budget {
    /// The budget of every condition a workflow evaluates.
    pub const STANDARD: Self = Self {
        steps: 100_000,
        time: Duration::from_secs(1),
    };
}

/// Which part of its [`Budget`] an evaluation used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    Steps(u64),
    Time(Duration),
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Steps(steps) => write!(
                f,
                "more than {steps} iterations of its comprehensions (all, exists, exists_one, \
                 map, filter)"
            ),
            Self::Time(time) => write!(f, "more than {} ms of evaluation", time.as_millis()),
        }
    }
}

/// A CEL expression that must evaluate to a bool, compiled when the definition is read.
///
/// It is evaluated against a context: a JSON object whose top-level members become CEL
/// variables. The server provides `object` (the event's object as the API serializes it:
/// `{type, id, attributes, relationships}`, kebab-case keys), `event` (`{name, id, created-at}`)
/// and `steps` (earlier step id → that step's output object; empty for the trigger).
#[derive(Clone)]
pub struct Condition {
    source: String,
    compiled: Arc<Compiled>,
}

/// The metered expression, and where the parts an error may concern were written.
struct Compiled {
    expression: IdedExpr,
    sites: Vec<Site>,
}

/// Why a condition could not give a bool. No variant carries a value the condition saw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("the context of a condition must be a JSON object of variables")]
    ContextNotObject,
    /// The expression failed: an unknown variable or key, a type mismatch, … The message says
    /// what and where, without the values involved.
    #[error("the condition could not be evaluated: {0}")]
    Evaluation(String),
    /// The expression gave something else than a bool (a value is not taken as truthy).
    #[error("the condition gave a value of type {0}, not a bool")]
    NotBool(String),
    /// The evaluation was stopped: it would have done more than its budget allows.
    #[error("the condition exceeded its budget: {0}")]
    OverBudget(Exceeded),
}

impl Condition {
    /// Compiles a condition; the error is the whole message: the CEL parser's, with its
    /// position, or the limit the expression breaks, with where.
    pub(super) fn compile(source: &str) -> Result<Self, String> {
        let (mut expression, source_info) =
            CEL.parser()
                .parse_with_source_info(source)
                .map_err(|errors| {
                    let messages = errors
                        .errors
                        .iter()
                        .map(|e| format!("{} (line {}, column {})", e.msg, e.pos.0, e.pos.1))
                        .collect::<Vec<_>>()
                        .join("; ");
                    format!("not a valid CEL expression: {messages}")
                })?;
        let offset = |id: u64| source_info.offset_for(id).map_or(0, |(start, _)| start);
        let mut limits = Limits::default();
        limits.check(&expression, 0);
        if let Some((nesting, id)) = limits
            .deepest
            .filter(|(n, _)| *n > MAX_COMPREHENSION_NESTING)
        {
            return Err(format!(
                "comprehensions (all, exists, exists_one, map, filter) nest at most \
                 {MAX_COMPREHENSION_NESTING} deep, since each level multiplies the work; this \
                 one nests {nesting} deep{}",
                at(source, &[offset(id)])
            ));
        }
        if let Some((items, id)) = limits.largest.filter(|(n, _)| *n > MAX_LITERAL_ITEMS) {
            return Err(format!(
                "a list or map literal holds at most {MAX_LITERAL_ITEMS} items; this one has \
                 {items}{}",
                at(source, &[offset(id)])
            ));
        }
        let mut sites = Vec::new();
        collect_sites(&expression, &offset, &mut sites);
        meter(&mut expression);
        Ok(Self {
            source: source.to_owned(),
            compiled: Arc::new(Compiled { expression, sites }),
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition with the members of `context` as its variables, within the
    /// [standard budget](Budget::STANDARD).
    pub fn evaluate(&self, context: &Value) -> Result<bool, ConditionError> {
        self.evaluate_within(context, Budget::STANDARD)
    }

    /// Evaluates the condition within `budget`. Past it, the evaluation stops at the next
    /// iteration of any comprehension and the result is [`ConditionError::OverBudget`], even
    /// when the rest of the expression would have absorbed the error (`… || true`).
    pub fn evaluate_within(&self, context: &Value, budget: Budget) -> Result<bool, ConditionError> {
        let variables = context
            .as_object()
            .ok_or(ConditionError::ContextNotObject)?;
        let meter = Arc::new(Meter::start(budget));
        let mut cel_context = cel::Context::with_env(Arc::clone(&CEL));
        let metered = Arc::clone(&meter);
        let step: MeterFunction = Box::new(move |call| {
            metered.step()?;
            call.args
                .pop()
                .ok_or(ExecutionError::MissingArgumentOrTarget)
        });
        cel_context
            .add_function(METER, step)
            .map_err(|e| ConditionError::Evaluation(e.to_string()))?;
        for (name, value) in variables {
            cel_context.add_variable_from_value(name.as_str(), to_cel(value));
        }
        let result = cel::Value::resolve(&self.compiled.expression, &cel_context);
        if let Some(exceeded) = meter.exceeded.get() {
            return Err(ConditionError::OverBudget(*exceeded));
        }
        match result {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(ConditionError::NotBool(other.type_of().to_string())),
            Err(e) => Err(ConditionError::Evaluation(self.describe(&e))),
        }
    }

    /// What went wrong, and where in the expression, without any value the condition saw.
    fn describe(&self, error: &ExecutionError) -> String {
        use ExecutionError as E;
        let calls = |function: &str| self.sites(SiteKind::Call, function);
        let (what, offsets) = match error {
            E::NoSuchKey(key) => {
                let written = [SiteKind::Field, SiteKind::Text]
                    .iter()
                    .flat_map(|kind| self.sites(*kind, key))
                    .collect::<Vec<_>>();
                if written.is_empty() {
                    // The key came from the data, not from the expression: not shown.
                    ("no such key".to_owned(), calls(INDEX))
                } else {
                    (format!("no such key: `{key}`"), written)
                }
            }
            E::UndeclaredReference(name) => {
                let written = [SiteKind::Ident, SiteKind::Call]
                    .iter()
                    .flat_map(|kind| self.sites(*kind, name))
                    .collect::<Vec<_>>();
                if written.is_empty() {
                    ("an undeclared name".to_owned(), written)
                } else {
                    (
                        format!(
                            "`{name}` is not declared (the variables are `object`, `event` and \
                             `steps`)"
                        ),
                        written,
                    )
                }
            }
            E::NoSuchOverload(overload) => (
                format!(
                    "`{}` cannot be applied to ({})",
                    operator(overload.function()),
                    overload
                        .argument_types()
                        .iter()
                        .map(|t| type_name(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                calls(overload.function()),
            ),
            E::UnsupportedBinaryOperator(name, left, right) => {
                let function = arithmetic(name);
                (
                    format!(
                        "`{}` cannot be applied to ({}, {})",
                        operator(function),
                        left.type_of(),
                        right.type_of()
                    ),
                    calls(function),
                )
            }
            E::Overflow(name, _, _) => {
                let function = arithmetic(name);
                (
                    format!("`{}` overflowed", operator(function)),
                    calls(function),
                )
            }
            E::DivisionByZero(_) => ("division by zero".to_owned(), calls("_/_")),
            E::RemainderByZero(_) => ("remainder of a division by zero".to_owned(), calls("_%_")),
            E::IndexOutOfBounds(_) => ("a list index is out of range".to_owned(), calls(INDEX)),
            E::UnsupportedIndex(index, target) => (
                format!(
                    "a {} cannot be indexed with a {}",
                    target.type_of(),
                    index.type_of()
                ),
                calls(INDEX),
            ),
            E::UnsupportedKeyType(key) => (
                format!("a {} cannot be a map key", key.type_of()),
                Vec::new(),
            ),
            E::ValuesNotComparable(left, right) => (
                format!(
                    "a {} cannot be compared with a {}",
                    left.type_of(),
                    right.type_of()
                ),
                Vec::new(),
            ),
            E::UnexpectedType { want, .. } => (
                format!("a value is not of the expected type ({})", type_name(want)),
                Vec::new(),
            ),
            E::FunctionError { function, .. } => (
                // The function's own message may quote its argument: left out.
                format!("`{}` failed on its arguments", operator(function)),
                calls(function),
            ),
            E::NotSupportedAsMethod { method, target } => (
                format!(
                    "`{}` cannot be called on a {}",
                    operator(method),
                    target.type_of()
                ),
                calls(method),
            ),
            E::UnsupportedTargetType { target } => (
                format!("a {} has no such method", target.type_of()),
                Vec::new(),
            ),
            E::InvalidArgumentCount { expected, actual } => (
                format!("a function takes {expected} arguments and was given {actual}"),
                Vec::new(),
            ),
            E::MissingArgumentOrTarget => (
                "a function was called without its argument or target".to_owned(),
                Vec::new(),
            ),
            E::DuplicateKey(_) => ("a map literal repeats a key".to_owned(), Vec::new()),
            _ => (
                "the expression could not be evaluated".to_owned(),
                Vec::new(),
            ),
        };
        format!("{what}{}", at(&self.source, &offsets))
    }

    /// Where the expression spells `name` as a `kind`.
    fn sites(&self, kind: SiteKind, name: &str) -> Vec<u32> {
        self.compiled
            .sites
            .iter()
            .filter(|site| site.kind == kind && site.name == name)
            .map(|site| site.offset)
            .collect()
    }
}

/// The index operator, `a[b]`.
const INDEX: &str = "_[_]";

/// The `@meter` function: counts a step and passes its argument through.
type MeterFunction = Box<
    dyn for<'c, 'a> Fn(&mut FunctionContext<'c, 'a>) -> Result<CowVal<'c, 'a>, ExecutionError>
        + Send
        + Sync,
>;

/// The steps one evaluation took, against its budget.
struct Meter {
    budget: Budget,
    started: Instant,
    steps: AtomicU64,
    exceeded: OnceLock<Exceeded>,
}

impl Meter {
    fn start(budget: Budget) -> Self {
        Self {
            budget,
            started: Instant::now(),
            steps: AtomicU64::new(0),
            exceeded: OnceLock::new(),
        }
    }

    /// Counts one step; fails from the first step past the budget on.
    fn step(&self) -> Result<(), ExecutionError> {
        let steps = self.steps.fetch_add(1, Ordering::Relaxed) + 1;
        if self.exceeded.get().is_none() {
            if steps > self.budget.steps {
                let _ = self.exceeded.set(Exceeded::Steps(self.budget.steps));
            } else if self.started.elapsed() > self.budget.time {
                let _ = self.exceeded.set(Exceeded::Time(self.budget.time));
            }
        }
        match self.exceeded.get() {
            Some(_) => Err(ExecutionError::function_error(METER, "over budget")),
            None => Ok(()),
        }
    }
}

/// The deepest comprehension nesting and the largest literal of an expression, each with the
/// node where it is.
#[derive(Default)]
struct Limits {
    deepest: Option<(usize, u64)>,
    largest: Option<(usize, u64)>,
}

impl Limits {
    /// Walks `expr`, which runs inside `nesting` comprehension bodies.
    fn check(&mut self, expr: &IdedExpr, nesting: usize) {
        let mut literal = |items: usize| {
            if self.largest.is_none_or(|(most, _)| items > most) {
                self.largest = Some((items, expr.id));
            }
        };
        match &expr.expr {
            Expr::List(list) => {
                literal(list.elements.len());
                for element in &list.elements {
                    self.check(element, nesting);
                }
            }
            Expr::Map(map) => {
                literal(map.entries.len());
                for entry in &map.entries {
                    self.check_entry(&entry.expr, nesting);
                }
            }
            Expr::Struct(structure) => {
                for entry in &structure.entries {
                    self.check_entry(&entry.expr, nesting);
                }
            }
            Expr::Comprehension(comprehension) => {
                // The range and the initial value are computed once per evaluation of the
                // comprehension; the rest once per iteration, one level deeper.
                let depth = nesting + 1;
                if self.deepest.is_none_or(|(most, _)| depth > most) {
                    self.deepest = Some((depth, expr.id));
                }
                self.check(&comprehension.iter_range, nesting);
                self.check(&comprehension.accu_init, nesting);
                for body in [
                    &comprehension.loop_cond,
                    &comprehension.loop_step,
                    &comprehension.result,
                ] {
                    self.check(body, depth);
                }
            }
            Expr::Call(call) => {
                for arg in call.target.iter().map(|t| &**t).chain(&call.args) {
                    self.check(arg, nesting);
                }
            }
            Expr::Select(select) => self.check(&select.operand, nesting),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn check_entry(&mut self, entry: &EntryExpr, nesting: usize) {
        match entry {
            EntryExpr::MapEntry(entry) => {
                self.check(&entry.key, nesting);
                self.check(&entry.value, nesting);
            }
            EntryExpr::StructField(field) => self.check(&field.value, nesting),
        }
    }
}

/// What a [`Site`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SiteKind {
    /// A call of a function or operator (`size(…)`, `_+_`).
    Call,
    /// A field selected: the `b` of `a.b`.
    Field,
    /// A variable.
    Ident,
    /// A string literal.
    Text,
}

/// A part of the expression as written, and its byte offset in the source.
struct Site {
    kind: SiteKind,
    name: String,
    offset: u32,
}

/// Whether `expr` is a node the macros added rather than one written in the source: their
/// accumulator (`@result`) and helpers have names that CEL cannot spell.
fn generated(expr: &IdedExpr) -> bool {
    match &expr.expr {
        Expr::Ident(name) => name.starts_with('@'),
        Expr::Call(call) => call.func_name.starts_with('@') || call.args.iter().any(generated),
        _ => false,
    }
}

/// Records where each call, field, variable and string literal of `expr` was written.
fn collect_sites(expr: &IdedExpr, offset: &impl Fn(u64) -> u32, sites: &mut Vec<Site>) {
    let mut site = |kind, name: &str| {
        sites.push(Site {
            kind,
            name: name.to_owned(),
            offset: offset(expr.id),
        });
    };
    match &expr.expr {
        Expr::Call(call) => {
            if !generated(expr) {
                site(SiteKind::Call, &call.func_name);
            }
            for arg in call.target.iter().map(|t| &**t).chain(&call.args) {
                collect_sites(arg, offset, sites);
            }
        }
        Expr::Select(select) => {
            site(SiteKind::Field, &select.field);
            collect_sites(&select.operand, offset, sites);
        }
        Expr::Ident(name) => {
            if !generated(expr) {
                site(SiteKind::Ident, name);
            }
        }
        Expr::Literal(LiteralValue::String(text)) => site(SiteKind::Text, text.inner()),
        Expr::List(list) => {
            for element in &list.elements {
                collect_sites(element, offset, sites);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                collect_entry_sites(&entry.expr, offset, sites);
            }
        }
        Expr::Struct(structure) => {
            for entry in &structure.entries {
                collect_entry_sites(&entry.expr, offset, sites);
            }
        }
        Expr::Comprehension(comprehension) => {
            for part in [
                &comprehension.iter_range,
                &comprehension.accu_init,
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ] {
                collect_sites(part, offset, sites);
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn collect_entry_sites(entry: &EntryExpr, offset: &impl Fn(u64) -> u32, sites: &mut Vec<Site>) {
    match entry {
        EntryExpr::MapEntry(entry) => {
            collect_sites(&entry.key, offset, sites);
            collect_sites(&entry.value, offset, sites);
        }
        EntryExpr::StructField(field) => collect_sites(&field.value, offset, sites),
    }
}

/// Puts a [`METER`] call in every comprehension, where it runs once per iteration and where
/// its error stops the comprehension at once (rather than being absorbed by `all`/`exists`,
/// which carry on past an error in their step).
fn meter(expr: &mut IdedExpr) {
    match &mut expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &mut call.target {
                meter(target);
            }
            call.args.iter_mut().for_each(meter);
        }
        Expr::Select(select) => meter(&mut select.operand),
        Expr::List(list) => list.elements.iter_mut().for_each(meter),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                meter_entry(&mut entry.expr);
            }
        }
        Expr::Struct(structure) => {
            for entry in &mut structure.entries {
                meter_entry(&mut entry.expr);
            }
        }
        Expr::Comprehension(comprehension) => {
            for part in [
                &mut comprehension.iter_range,
                &mut comprehension.accu_init,
                &mut comprehension.loop_cond,
                &mut comprehension.loop_step,
                &mut comprehension.result,
            ] {
                meter(part);
            }
            meter_iterations(comprehension);
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn meter_entry(entry: &mut EntryExpr) {
    match entry {
        EntryExpr::MapEntry(entry) => {
            meter(&mut entry.key);
            meter(&mut entry.value);
        }
        EntryExpr::StructField(field) => meter(&mut field.value),
    }
}

/// Wraps the part of `comprehension` evaluated on every iteration in a [`METER`] call.
///
/// `map` and `filter` keep the shape the interpreter builds their list in place for (a literal
/// loop condition; a step `@result + [item]`, or `guard ? @result + [item] : @result`): the
/// guard, else the item, is metered. Other comprehensions meter their loop condition.
fn meter_iterations(comprehension: &mut ComprehensionExpr) {
    let accu = comprehension.accu_var.as_str();
    let built_in_place = is_ident(&comprehension.result, accu)
        && matches!(comprehension.loop_cond.expr, Expr::Literal(_));
    let per_iteration = if built_in_place {
        appended_part(&mut comprehension.loop_step, accu)
    } else {
        None
    };
    wrap(per_iteration.unwrap_or(&mut comprehension.loop_cond));
}

fn is_ident(expr: &IdedExpr, name: &str) -> bool {
    matches!(&expr.expr, Expr::Ident(ident) if ident == name)
}

/// In a step that appends to the accumulator `accu`, the part evaluated on every iteration:
/// the guard of `guard ? accu + [item] : accu`, or the item of `accu + [item]`.
fn appended_part<'e>(step: &'e mut IdedExpr, accu: &str) -> Option<&'e mut IdedExpr> {
    let guarded = match &step.expr {
        Expr::Call(call) if call.target.is_none() => {
            match (call.func_name.as_str(), &call.args[..]) {
                ("_?_:_", [_, append, otherwise]) if is_ident(otherwise, accu) => {
                    appends_one_item(append, accu).then_some(true)
                }
                _ => appends_one_item(step, accu).then_some(false),
            }
        }
        _ => None,
    }?;
    let Expr::Call(call) = &mut step.expr else {
        return None;
    };
    if guarded {
        return call.args.first_mut();
    }
    match &mut call.args.get_mut(1)?.expr {
        Expr::List(list) => list.elements.first_mut(),
        _ => None,
    }
}

/// Whether `step` is `accu + [item]`.
fn appends_one_item(step: &IdedExpr, accu: &str) -> bool {
    match &step.expr {
        Expr::Call(call) if call.func_name == "_+_" && call.target.is_none() => {
            matches!(&call.args[..], [left, right]
                if is_ident(left, accu)
                    && matches!(&right.expr, Expr::List(list) if list.elements.len() == 1))
        }
        _ => false,
    }
}

/// Replaces `expr` with `@meter(expr)`.
fn wrap(expr: &mut IdedExpr) {
    let inner = std::mem::take(expr);
    *expr = IdedExpr {
        id: inner.id,
        expr: Expr::Call(CallExpr {
            func_name: METER.to_owned(),
            target: None,
            args: vec![inner],
        }),
    };
}

/// ` (line 1, column 5; line 2, column 3)`: where the first few of `offsets` are in `source`,
/// or nothing without any.
fn at(source: &str, offsets: &[u32]) -> String {
    const SHOWN: usize = 3;
    let mut offsets = offsets.to_vec();
    offsets.sort_unstable();
    offsets.dedup();
    if offsets.is_empty() {
        return String::new();
    }
    let mut places: Vec<String> = offsets
        .iter()
        .take(SHOWN)
        .map(|&offset| {
            let offset = usize::try_from(offset)
                .unwrap_or(usize::MAX)
                .min(source.len());
            let before = &source.as_bytes()[..offset];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = offset
                - before
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
            format!("line {line}, column {}", column + 1)
        })
        .collect();
    if offsets.len() > SHOWN {
        places.push("…".to_owned());
    }
    format!(" ({})", places.join("; "))
}

/// How an operator is written (`_+_` is `+`); a function's name as it is.
fn operator(function: &str) -> &str {
    match function {
        "_+_" => "+",
        "_-_" => "-",
        "_*_" => "*",
        "_/_" => "/",
        "_%_" => "%",
        "_==_" => "==",
        "_!=_" => "!=",
        "_<_" => "<",
        "_<=_" => "<=",
        "_>_" => ">",
        "_>=_" => ">=",
        "_&&_" => "&&",
        "_||_" => "||",
        "!_" => "!",
        "-_" => "-",
        "_?_:_" => "?:",
        "_[_]" => "[]",
        "@in" => "in",
        other => other,
    }
}

/// The operator an arithmetic error names (`add`) as the interpreter calls it (`_+_`).
fn arithmetic(name: &str) -> &str {
    match name {
        "add" => "_+_",
        "sub" => "_-_",
        "mul" => "_*_",
        "div" => "_/_",
        "rem" => "_%_",
        other => other,
    }
}

/// A type's name as an error gives it, unless it does not look like one (some errors of the
/// interpreter put a value's debug form there instead).
fn type_name(name: &str) -> &str {
    let looks_like_a_type = name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '|'));
    if looks_like_a_type {
        name
    } else {
        "another type"
    }
}

/// A JSON value as a CEL value: integers as `int` (as `uint` above `i64::MAX`), other numbers
/// as `double`, objects as maps with string keys.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => cel::Value::Int(i),
            (None, Some(u)) => cel::Value::UInt(u),
            // Without serde_json's arbitrary precision every number is an f64 at worst.
            (None, None) => n.as_f64().map_or(cel::Value::Null, cel::Value::Float),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => cel::Value::Map(cel::objects::Map {
            map: Arc::new(
                map.iter()
                    .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                    .collect(),
            ),
        }),
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

/// Two conditions are equal when written the same: the program follows from the source.
impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn condition(source: &str) -> Condition {
        Condition::compile(source).unwrap()
    }

    /// `[0, 0, …]` with `items` items.
    fn list(items: usize) -> String {
        format!("[{}]", vec!["0"; items].join(","))
    }

    /// `levels` comprehensions `all`, each over a literal list of `items` items, nested.
    fn nested_all(levels: usize, items: usize) -> String {
        (0..levels).rev().fold("true".to_owned(), |inner, level| {
            format!("{}.all(v{level}, {inner})", list(items))
        })
    }

    const CANARY: &str = "Zebulonia";

    fn canary_context() -> Value {
        json!({"object": {"name": CANARY, "pattern": format!("{CANARY}(("), "big": i64::MAX,
                          "tags": ["a", "b", "c"]}})
    }

    #[test]
    fn nesting_and_literal_sizes_are_limited_on_compile() {
        // The condition of the report: five levels of 35 items, 52 million iterations.
        let message = Condition::compile(&nested_all(5, 35)).unwrap_err();
        assert_eq!(
            message,
            "comprehensions (all, exists, exists_one, map, filter) nest at most 3 deep, since \
             each level multiplies the work; this one nests 5 deep (line 1, column 396)"
        );
        assert!(Condition::compile(&nested_all(3, MAX_LITERAL_ITEMS)).is_ok());
        // A comprehension anywhere in a body runs once per iteration of that body: it is one
        // level deeper, even in the range of another comprehension.
        let in_body = "[1].all(a, [1].all(b, [1].all(c, [1].map(d, d) == [1])))";
        assert!(
            Condition::compile(in_body)
                .unwrap_err()
                .contains("nests 4 deep")
        );
        assert!(Condition::compile("[1].all(a, [1].all(b, [1].map(c, c).all(d, true)))").is_ok());
        // A range computed once, outside any body, adds nothing.
        assert!(Condition::compile("[1].map(a, a).all(b, [1].all(c, [1].all(d, true)))").is_ok());

        let message = Condition::compile(&format!("1 in {}", list(257))).unwrap_err();
        assert_eq!(
            message,
            "a list or map literal holds at most 256 items; this one has 257 (line 1, column 6)"
        );
        let map = format!(
            "{{{}}}.size() > 0",
            (0..257)
                .map(|i| format!("{i}: 0"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(
            Condition::compile(&map)
                .unwrap_err()
                .contains("this one has 257")
        );
        assert!(Condition::compile(&format!("1 in {}", list(256))).is_ok());
    }

    #[test]
    fn an_evaluation_stops_at_its_budget() {
        let context = json!({});
        // The most expensive condition the limits accept: 256³ iterations.
        let expensive = condition(&nested_all(3, MAX_LITERAL_ITEMS));
        let unhurried = Budget {
            time: Duration::from_secs(600),
            ..Budget::STANDARD
        };
        assert_eq!(
            expensive.evaluate_within(&context, unhurried),
            Err(ConditionError::OverBudget(Exceeded::Steps(
                Budget::STANDARD.steps
            )))
        );
        assert!(matches!(
            expensive.evaluate(&context),
            Err(ConditionError::OverBudget(_))
        ));
        // `||` absorbs errors in CEL; a budget error still ends the evaluation.
        let absorbed = condition(&format!("{} || true", nested_all(3, MAX_LITERAL_ITEMS)));
        assert!(matches!(
            absorbed.evaluate(&context),
            Err(ConditionError::OverBudget(_))
        ));
        let out_of_time = Budget {
            steps: u64::MAX,
            time: Duration::ZERO,
        };
        assert_eq!(
            expensive.evaluate_within(&context, out_of_time),
            Err(ConditionError::OverBudget(Exceeded::Time(Duration::ZERO)))
        );
        assert_eq!(
            expensive
                .evaluate_within(&context, unhurried)
                .unwrap_err()
                .to_string(),
            "the condition exceeded its budget: more than 100000 iterations of its \
             comprehensions (all, exists, exists_one, map, filter)"
        );
    }

    #[test]
    fn every_iteration_of_every_macro_is_one_step() {
        let context = json!({"tags": ["a", "b", "c"]});
        for source in [
            "tags.all(t, t != '')",
            "tags.exists(t, t == 'c')",
            "tags.exists_one(t, t == 'b')",
            "tags.existsOne(t, t == 'b')",
            "tags.map(t, t + t) == ['aa', 'bb', 'cc']",
            "tags.map(t, t != 'a', t) == ['b', 'c']",
            "tags.filter(t, t != 'b') == ['a', 'c']",
        ] {
            let within = |steps| {
                condition(source).evaluate_within(
                    &context,
                    Budget {
                        steps,
                        time: Duration::from_secs(60),
                    },
                )
            };
            assert_eq!(within(3), Ok(true), "{source}");
            assert_eq!(
                within(2),
                Err(ConditionError::OverBudget(Exceeded::Steps(2))),
                "{source}"
            );
        }
        // `exists` stops at the first match: a step for each item it looks at, plus the one
        // it stops at (3 for `a`, 2 + 1 for `b`... and 3 + 3 + 2 for the inner loops).
        let nested = condition("tags.all(a, tags.exists(b, b == a))");
        let within = |steps| {
            nested.evaluate_within(
                &context,
                Budget {
                    steps,
                    time: Duration::from_secs(60),
                },
            )
        };
        assert_eq!(within(11), Ok(true));
        assert!(within(10).is_err());
    }

    #[test]
    fn errors_say_what_and_where_but_never_a_value() {
        for (source, expected) in [
            (
                "object.name + 1 == 2",
                "`+` cannot be applied to (string, int) (line 1, column 13)",
            ),
            (
                "object.name / 2 == 1",
                "`/` cannot be applied to (string, int) (line 1, column 13)",
            ),
            (
                "object.name > 1",
                "`>` cannot be applied to (string, int) (line 1, column 13)",
            ),
            (
                "{'a': 1}[object.name] == 1",
                "no such key (line 1, column 9)",
            ),
            (
                "object.missing == 1",
                "no such key: `missing` (line 1, column 7)",
            ),
            (
                "object['missing'] == 1",
                "no such key: `missing` (line 1, column 8)",
            ),
            (
                "int(object.name) > 0",
                "`int` failed on its arguments (line 1, column 4)",
            ),
            (
                "'x'.matches(object.pattern)",
                "`matches` failed on its arguments (line 1, column 12)",
            ),
            (
                "size({object.name: 1, object.name: 2}) == 1",
                "a map literal repeats a key",
            ),
            (
                "[1][object.name] == 1",
                "`[]` cannot be applied to (list, string) (line 1, column 4)",
            ),
            ("object.big + 1 > 0", "`+` overflowed (line 1, column 12)"),
            (
                "object.tags[7] == 'a'",
                "a list index is out of range (line 1, column 12)",
            ),
            (
                "nothing == 1",
                "`nothing` is not declared (the variables are `object`, `event` and `steps`) \
                 (line 1, column 1)",
            ),
            (
                "object.tags.all(t, t + 1 > 0)",
                "`+` cannot be applied to (string, int) (line 1, column 22)",
            ),
        ] {
            let error = condition(source).evaluate(&canary_context()).unwrap_err();
            let ConditionError::Evaluation(message) = &error else {
                panic!("{source}: {error:?}");
            };
            assert_eq!(message, expected, "{source}");
            assert!(!error.to_string().contains(CANARY), "{source}: {error}");
        }
    }

    #[test]
    fn names_that_only_look_like_types_are_shown() {
        assert_eq!(type_name("string"), "string");
        assert_eq!(type_name("int|uint|double"), "int|uint|double");
        assert_eq!(type_name("String(\"Zebulonia\")"), "another type");
    }
}
