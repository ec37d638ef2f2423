//! The in-memory form of a Hessian 2.0 value, close to the wire: back-references stay
//! literal (`Value::Ref`), type names and list forms are kept, and map entries and object
//! fields stay in wire order, so that a decoded stream can be encoded back to the same bytes.

use std::sync::Arc;

/// One Hessian 2.0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `N`.
    Null,
    /// `T` / `F`.
    Bool(bool),
    /// A 32-bit int (Java `int`, and also `short`/`byte`, which hessian-lite writes as int).
    Int(i32),
    /// A 64-bit long.
    Long(i64),
    /// A 64-bit double (Java `float` arrives as a double too).
    Double(f64),
    /// A date: milliseconds since 1970-01-01T00:00:00Z.
    Date(i64),
    /// A string. Lone UTF-16 surrogates on the wire are decoded as U+FFFD.
    String(String),
    /// A byte array.
    Binary(Vec<u8>),
    /// A list, typed or untyped, fixed- or variable-length.
    List(List),
    /// A map, typed or untyped.
    Map(Map),
    /// An object: an instance of a class definition.
    Object(Object),
    /// A back-reference to the n-th container started in the stream; see [`ref_table`].
    Ref(u32),
}

/// A Hessian list.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    /// The type, e.g. `"[int"` or `"java.util.HashSet"`; `None` for an untyped list.
    pub type_name: Option<String>,
    /// The elements in wire order.
    pub items: Vec<Value>,
    /// Whether the length is written up front (`true`, what Java sends for collections and
    /// arrays) or the list is terminated by `Z` (`false`; hessian-lite cannot read those).
    pub fixed_length: bool,
}

/// A Hessian map.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    /// The type, e.g. `"java.util.TreeMap"`; `None` for an untyped map (`H`, a `HashMap`).
    pub type_name: Option<String>,
    /// The entries in wire order.
    pub entries: Vec<(Value, Value)>,
}

/// A class definition (`C`): the class name and its field names in wire order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClassDef {
    /// The Java class name, e.g. `"org.apache.dubbo.demo.User"`.
    pub name: String,
    /// The field names in the order their values are written.
    pub fields: Vec<String>,
}

/// An object: its class definition and one value per field, in the definition's field order.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The class definition, shared by all objects of a stream that use it.
    pub class: Arc<ClassDef>,
    /// The field values, `values[i]` belonging to `class.fields[i]`.
    pub values: Vec<Value>,
}

impl Value {
    /// The string if this is a `String`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number if this is an `Int` or a `Long`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Long(l) => Some(*l),
            _ => None,
        }
    }

    /// The boolean if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Whether this is `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short lowercase name of the variant ("int", "string", "list"...), for messages.
    pub fn type_name_for_display(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Long(_) => "long",
            Value::Double(_) => "double",
            Value::Date(_) => "date",
            Value::String(_) => "string",
            Value::Binary(_) => "binary",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Ref(_) => "ref",
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i)
    }
}

impl From<i64> for Value {
    fn from(l: i64) -> Self {
        Value::Long(l)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Value::Double(d)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<List> for Value {
    fn from(l: List) -> Self {
        Value::List(l)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

impl From<Object> for Value {
    fn from(o: Object) -> Self {
        Value::Object(o)
    }
}

impl List {
    /// An untyped fixed-length list, what hessian-lite 4.0.3 writes for a `java.util.ArrayList`.
    pub fn untyped(items: Vec<Value>) -> List {
        List {
            type_name: None,
            items,
            fixed_length: true,
        }
    }

    /// A typed fixed-length list, e.g. `"[string"` for a Java `String[]`.
    pub fn typed(type_name: impl Into<String>, items: Vec<Value>) -> List {
        List {
            type_name: Some(type_name.into()),
            items,
            fixed_length: true,
        }
    }
}

impl Map {
    /// An untyped map (`H`), what Java writes for a `java.util.HashMap`.
    pub fn untyped(entries: Vec<(Value, Value)>) -> Map {
        Map {
            type_name: None,
            entries,
        }
    }

    /// A typed map (`M`), e.g. `"java.util.TreeMap"`.
    pub fn typed(type_name: impl Into<String>, entries: Vec<(Value, Value)>) -> Map {
        Map {
            type_name: Some(type_name.into()),
            entries,
        }
    }

    /// The value of the first entry whose key is the string `key`.
    pub fn get_str(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

impl Object {
    /// An object of class `class_name` with the given fields, in the order they will be written.
    pub fn new(class_name: impl Into<String>, fields: Vec<(String, Value)>) -> Object {
        let (names, values) = fields.into_iter().unzip();
        Object {
            class: Arc::new(ClassDef {
                name: class_name.into(),
                fields: names,
            }),
            values,
        }
    }

    /// The value of field `field`, if the class has it.
    pub fn get(&self, field: &str) -> Option<&Value> {
        let index = self.class.fields.iter().position(|f| f == field)?;
        self.values.get(index)
    }
}

/// The containers (lists, maps, objects) of a decoded stream in the order they started on the
/// wire (= pre-order over the roots), so `Value::Ref(n)` resolves to `ref_table(roots)[n]`; no
/// copies.
pub fn ref_table(roots: &[Value]) -> Vec<&Value> {
    let mut table = Vec::new();
    // An explicit stack instead of recursion: values built in code may nest arbitrarily deep.
    let mut stack: Vec<&Value> = roots.iter().rev().collect();
    while let Some(v) = stack.pop() {
        match v {
            Value::List(l) => {
                table.push(v);
                stack.extend(l.items.iter().rev());
            }
            Value::Map(m) => {
                table.push(v);
                for (k, val) in m.entries.iter().rev() {
                    stack.push(val);
                    stack.push(k);
                }
            }
            Value::Object(o) => {
                table.push(v);
                stack.extend(o.values.iter().rev());
            }
            _ => {}
        }
    }
    table
}

/// About how many bytes of memory the decoded `roots` take, counted as [`super::Decoder`]
/// charges its budget: a 56-byte slot per list item, object field and map key or value, the
/// bytes of strings, byte arrays and type names, plus a slot per root. References are not
/// followed (a `Value::Ref` is one slot): this is the size of the reply, not of what it
/// would expand to, so budgets for expanding references are set relative to it.
pub fn decoded_size(roots: &[Value]) -> usize {
    const SLOT: usize = std::mem::size_of::<Value>();
    let mut total = roots.len().saturating_mul(SLOT);
    let mut stack: Vec<&Value> = roots.iter().collect();
    while let Some(v) = stack.pop() {
        let own = match v {
            Value::String(s) => s.len(),
            Value::Binary(b) => b.len(),
            Value::List(l) => {
                stack.extend(&l.items);
                l.items.len() * SLOT + l.type_name.as_ref().map_or(0, String::len)
            }
            Value::Map(m) => {
                for (k, val) in &m.entries {
                    stack.push(k);
                    stack.push(val);
                }
                m.entries.len() * 2 * SLOT + m.type_name.as_ref().map_or(0, String::len)
            }
            Value::Object(o) => {
                stack.extend(&o.values);
                o.values.len() * SLOT
            }
            _ => 0,
        };
        total = total.saturating_add(own);
    }
    total
}
