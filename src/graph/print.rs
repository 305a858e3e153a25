pub fn to_text(_m: &super::Model) -> String { String::new() } pub fn to_dot(_m: &super::Model) -> String { String::new() }
