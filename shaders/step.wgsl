// What changes from one forward step to the next, written once per step with one
// queue.write_buffer, so every other binding and parameter of a decode step is built once.
struct Step {
    pos0: u32, // position of the step's first token
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
