// The GeGLU gate: GELU with the tanh approximation, 0.5·v·(1 + tanh(u)), u = √(2/π)·(v + 0.044715·v³),
// written as v · sigmoid(2u) (the same function; no tanh of a large u, which some drivers make NaN).
fn act(v: f32) -> f32 {
    let u = 0.7978846 * (v + 0.044715 * v * v * v);
    return v / (1.0 + exp(-2.0 * u));
}
