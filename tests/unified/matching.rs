//! "Evaluating Matches": whether an actual value matches an expected one.
//!
//! Root-level documents (a command, an operation's result) may hold keys the expected document
//! does not name; nested documents may not. Arrays match element by element and must have the
//! same length. 32-bit, 64-bit and floating-point numbers compare by value. Key order never
//! matters. The special operators the change-stream files use (`$$exists`, `$$type`,
//! `$$unsetOrMatches`) are evaluated; any other `$$` operator is reported as unsupported.

use bson::spec::ElementType;
use bson::{Bson, Document};

use super::{Failure, show};

/// Matches `actual` (absent when `None`) against `expected` as a root-level value.
pub(crate) fn match_root(expected: &Bson, actual: Option<&Bson>) -> Result<(), Failure> {
    match_value(expected, actual, true, "")
}

/// The operator of `{ $$name: argument }`: a document whose first and only key starts with `$$`.
fn special_operator(expected: &Bson) -> Option<(&str, &Bson)> {
    let Bson::Document(doc) = expected else { return None };
    let mut iter = doc.iter();
    let (key, value) = iter.next()?;
    (key.starts_with("$$") && iter.next().is_none()).then_some((key.as_str(), value))
}

fn at(path: &str) -> &str {
    if path.is_empty() { "the root" } else { path }
}

fn match_value(expected: &Bson, actual: Option<&Bson>, root: bool, path: &str) -> Result<(), Failure> {
    if let Some((operator, argument)) = special_operator(expected) {
        return match_operator(operator, argument, actual, root, path);
    }
    let Some(actual) = actual else {
        return Err(Failure::failed(format!(
            "{}: expected {}, found nothing",
            at(path),
            show(expected)
        )));
    };
    match expected {
        Bson::Document(expected) => {
            let Bson::Document(actual) = actual else {
                return Err(mismatch(path, &Bson::Document(expected.clone()), actual));
            };
            match_document(expected, actual, root, path)
        }
        Bson::Array(expected_items) => {
            let Bson::Array(actual_items) = actual else {
                return Err(mismatch(path, expected, actual));
            };
            if expected_items.len() != actual_items.len() {
                return Err(Failure::failed(format!(
                    "{}: expected {} elements, found {}: {}",
                    at(path),
                    expected_items.len(),
                    actual_items.len(),
                    show(actual)
                )));
            }
            for (index, (expected, actual)) in expected_items.iter().zip(actual_items).enumerate() {
                match_value(expected, Some(actual), false, &join(path, &index.to_string()))?;
            }
            Ok(())
        }
        _ if scalars_equal(expected, actual) => Ok(()),
        _ => Err(mismatch(path, expected, actual)),
    }
}

fn match_document(expected: &Document, actual: &Document, root: bool, path: &str) -> Result<(), Failure> {
    for (key, value) in expected {
        match_value(value, actual.get(key), false, &join(path, key))?;
    }
    if !root && let Some(extra) = actual.keys().find(|key| !expected.contains_key(key.as_str())) {
        return Err(Failure::failed(format!(
            "{}: unexpected key {extra:?} in a nested document: {}",
            at(path),
            show(&Bson::Document(actual.clone()))
        )));
    }
    Ok(())
}

fn match_operator(
    operator: &str,
    argument: &Bson,
    actual: Option<&Bson>,
    root: bool,
    path: &str,
) -> Result<(), Failure> {
    match operator {
        "$$exists" => {
            let Bson::Boolean(should_exist) = argument else {
                return Err(Failure::failed(format!("{}: $$exists takes a boolean", at(path))));
            };
            match (actual, *should_exist) {
                (Some(_), true) | (None, false) => Ok(()),
                (None, true) => Err(Failure::failed(format!("{}: expected to exist, absent", at(path)))),
                (Some(value), false) => Err(Failure::failed(format!(
                    "{}: expected to be absent, found {}",
                    at(path),
                    show(value)
                ))),
            }
        }
        // Does not change whether a document counts as the root.
        "$$unsetOrMatches" => match actual {
            None => Ok(()),
            Some(_) => match_value(argument, actual, root, path),
        },
        "$$type" => {
            let Some(actual) = actual else {
                return Err(Failure::failed(format!(
                    "{}: expected a value of type {}, found nothing",
                    at(path),
                    show(argument)
                )));
            };
            let names: Vec<&Bson> = match argument {
                Bson::Array(names) => names.iter().collect(),
                name => vec![name],
            };
            for name in names {
                let Bson::String(name) = name else {
                    return Err(Failure::failed(format!("{}: $$type takes type names", at(path))));
                };
                if has_type(actual, name)? {
                    return Ok(());
                }
            }
            Err(Failure::failed(format!(
                "{}: expected type {}, found {:?} {}",
                at(path),
                show(argument),
                actual.element_type(),
                show(actual)
            )))
        }
        other => Err(Failure::unsupported(format!("matching operator {other}"))),
    }
}

/// Whether `value` has the type `name` of the `$type` query operator (with its `number` alias).
fn has_type(value: &Bson, name: &str) -> Result<bool, Failure> {
    let actual = value.element_type();
    let wanted: &[ElementType] = match name {
        "double" => &[ElementType::Double],
        "string" => &[ElementType::String],
        "object" => &[ElementType::EmbeddedDocument],
        "array" => &[ElementType::Array],
        "binData" => &[ElementType::Binary],
        "undefined" => &[ElementType::Undefined],
        "objectId" => &[ElementType::ObjectId],
        "bool" => &[ElementType::Boolean],
        "date" => &[ElementType::DateTime],
        "null" => &[ElementType::Null],
        "regex" => &[ElementType::RegularExpression],
        "dbPointer" => &[ElementType::DbPointer],
        "javascript" => &[ElementType::JavaScriptCode],
        "symbol" => &[ElementType::Symbol],
        "javascriptWithScope" => &[ElementType::JavaScriptCodeWithScope],
        "int" => &[ElementType::Int32],
        "timestamp" => &[ElementType::Timestamp],
        "long" => &[ElementType::Int64],
        "decimal" => &[ElementType::Decimal128],
        "minKey" => &[ElementType::MinKey],
        "maxKey" => &[ElementType::MaxKey],
        "number" => &[
            ElementType::Int32,
            ElementType::Int64,
            ElementType::Double,
            ElementType::Decimal128,
        ],
        other => return Err(Failure::failed(format!("$$type: unknown type name {other:?}"))),
    };
    Ok(wanted.contains(&actual))
}

/// Equality of non-container values, with int32, int64 and double equal when their values are.
fn scalars_equal(expected: &Bson, actual: &Bson) -> bool {
    if let (Some(e), Some(a)) = (integer(expected), integer(actual)) {
        return e == a;
    }
    match (float(expected), float(actual)) {
        (Some(e), Some(a)) => e == a,
        _ => expected == actual,
    }
}

fn integer(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        _ => None,
    }
}

/// Any number but Decimal128, as a double (exact for the integers tests use).
#[allow(clippy::cast_precision_loss)]
fn float(value: &Bson) -> Option<f64> {
    match value {
        Bson::Double(n) => Some(*n),
        Bson::Int32(n) => Some(f64::from(*n)),
        Bson::Int64(n) => Some(*n as f64),
        _ => None,
    }
}

fn mismatch(path: &str, expected: &Bson, actual: &Bson) -> Failure {
    Failure::failed(format!(
        "{}: expected {}, found {}",
        at(path),
        show(expected),
        show(actual)
    ))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use bson::bson;

    use super::*;

    fn check(expected: Bson, actual: Bson) -> bool {
        match_root(&expected, Some(&actual)).is_ok()
    }

    #[test]
    fn root_documents_allow_extra_keys_and_nested_ones_do_not() {
        assert!(check(bson!({ "x": 1 }), bson!({ "x": 1, "y": 1 })));
        assert!(!check(bson!({ "x": 1, "y": 1 }), bson!({ "x": 1 })));
        assert!(!check(bson!({ "x": { "y": 1 } }), bson!({ "x": { "y": 1, "z": 1 } })));
        assert!(check(bson!({ "y": 1, "x": 1 }), bson!({ "x": 1, "y": 1 })));
    }

    #[test]
    fn arrays_have_the_same_length_and_nested_documents_in_them_are_exact() {
        assert!(!check(bson!({ "a": [1, 2, 3] }), bson!({ "a": [1, 2, 3, 4] })));
        assert!(!check(
            bson!({ "a": [{ "x": 1 }] }),
            bson!({ "a": [{ "x": 1, "y": 2 }] })
        ));
        assert!(check(bson!({ "a": [{ "x": 1 }] }), bson!({ "a": [{ "x": 1 }] })));
    }

    #[test]
    fn numbers_compare_across_types() {
        assert!(check(bson!({ "ok": 1 }), bson!({ "ok": 1.0 })));
        assert!(check(bson!({ "n": 1_i64 }), bson!({ "n": 1 })));
        assert!(!check(bson!({ "ok": 1 }), bson!({ "ok": 1.5 })));
        assert!(!check(bson!({ "ok": 1 }), bson!({ "ok": "1" })));
    }

    #[test]
    fn exists_unset_or_matches_and_type() {
        assert!(check(bson!({ "a": { "$$exists": true } }), bson!({ "a": null })));
        assert!(!check(bson!({ "a": { "$$exists": true } }), bson!({})));
        assert!(check(bson!({ "a": { "$$exists": false } }), bson!({})));
        assert!(!check(bson!({ "a": { "$$exists": false } }), bson!({ "a": 1 })));
        assert!(check(bson!({ "a": { "$$unsetOrMatches": 2 } }), bson!({})));
        assert!(check(bson!({ "a": { "$$unsetOrMatches": 2 } }), bson!({ "a": 2_i64 })));
        assert!(!check(bson!({ "a": { "$$unsetOrMatches": 2 } }), bson!({ "a": 3 })));
        assert!(check(
            bson!({ "a": { "$$type": ["int", "long"] } }),
            bson!({ "a": 5_i64 })
        ));
        assert!(!check(bson!({ "a": { "$$type": "int" } }), bson!({ "a": "5" })));
        assert!(!check(bson!({ "a": { "$$type": "int" } }), bson!({})));
        assert!(check(
            bson!({ "a": ["x", { "$$type": "int" }] }),
            bson!({ "a": ["x", 0] })
        ));
    }

    #[test]
    fn unset_or_matches_keeps_the_root_rule_of_its_place() {
        let expected = bson!({ "$$unsetOrMatches": { "insertedId": 1 } });
        assert!(match_root(&expected, None).is_ok());
        assert!(check(expected, bson!({ "insertedId": 1, "extra": true })));
        let nested = bson!({ "d": { "$$unsetOrMatches": { "x": 1 } } });
        assert!(!check(nested, bson!({ "d": { "x": 1, "y": 2 } })));
    }

    #[test]
    fn unknown_operators_are_unsupported() {
        let result = match_root(&bson!({ "a": { "$$lte": 1 } }), Some(&bson!({ "a": 1 })));
        assert!(matches!(result, Err(Failure::Unsupported(_))));
    }
}
