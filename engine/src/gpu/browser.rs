//! Subgroups in the browser. wgpu 30's WebGPU backend has no mapping for the `subgroups` feature
//! (its `FEATURES_MAPPING` lacks it), so it can neither see nor request it. Until it does,
//! [`install`] wraps `navigator.gpu.requestAdapter` once: the adapter it returns adds `subgroups`
//! to the features of the device wgpu requests, where the adapter offers it, and [`sizes`] then
//! tells [`super::Gpu::new`] the adapter's subgroup sizes. Browsers accept `enable subgroups;`
//! in WGSL once the device has the feature.

use std::cell::Cell;

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

thread_local! {
    static INSTALLED: Cell<bool> = const { Cell::new(false) };
    /// The subgroup sizes of the adapter whose device was requested with `subgroups`.
    static SIZES: Cell<Option<(u32, u32)>> = const { Cell::new(None) };
}

fn get(o: &JsValue, key: &str) -> JsValue {
    if o.is_object() { Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED) } else { JsValue::UNDEFINED }
}

fn method(o: &JsValue, key: &str) -> Option<Function> {
    get(o, key).dyn_into::<Function>().ok()
}

/// Wrap `navigator.gpu.requestAdapter` (once per worker or page).
pub fn install() {
    if INSTALLED.with(|i| i.replace(true)) {
        return;
    }
    let gpu = get(&get(&js_sys::global(), "navigator"), "gpu");
    let Some(request_adapter) = method(&gpu, "requestAdapter") else { return };
    let this = gpu.clone();
    let wrapped = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |options: JsValue| -> JsValue {
        let adapter = match request_adapter.call1(&this, &options) {
            Ok(p) => p,
            Err(e) => return Promise::reject(&e).into(),
        };
        let patch = Closure::once_into_js(|adapter: JsValue| -> JsValue {
            ask_for_subgroups(&adapter);
            adapter
        });
        // `then` with a callback that returns the adapter (js-sys' `Promise::then` returns nothing).
        match method(&adapter, "then").map(|then| then.call1(&adapter, &patch)) {
            Some(Ok(p)) => p,
            _ => adapter,
        }
    });
    // An own property of the `GPU` object shadows the prototype's method.
    if Reflect::set(&gpu, &"requestAdapter".into(), wrapped.as_ref()).is_ok() {
        wrapped.forget();
    }
}

/// Make `adapter.requestDevice` add `subgroups` to the required features, where the adapter has
/// the feature and reports its subgroup sizes.
fn ask_for_subgroups(adapter: &JsValue) {
    let features = get(adapter, "features");
    let has = method(&features, "has").and_then(|has| has.call1(&features, &"subgroups".into()).ok());
    if has.and_then(|h| h.as_bool()) != Some(true) {
        return;
    }
    let info = get(adapter, "info");
    let (Some(min), Some(max)) = (get(&info, "subgroupMinSize").as_f64(), get(&info, "subgroupMaxSize").as_f64()) else { return };
    let Some(request_device) = method(adapter, "requestDevice") else { return };
    let this = adapter.clone();
    let wrapped = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |descriptor: JsValue| -> JsValue {
        let descriptor: JsValue = if descriptor.is_object() { descriptor } else { Object::new().into() };
        let features = get(&descriptor, "requiredFeatures");
        let features = if features.is_object() { Array::from(&features) } else { Array::new() };
        if !features.includes(&"subgroups".into(), 0) {
            features.push(&"subgroups".into());
        }
        let _ = Reflect::set(&descriptor, &"requiredFeatures".into(), &features);
        SIZES.with(|s| s.set(Some((min as u32, max as u32))));
        match request_device.call1(&this, &descriptor) {
            Ok(p) => p,
            Err(e) => Promise::reject(&e).into(),
        }
    });
    if Reflect::set(adapter, &"requestDevice".into(), wrapped.as_ref()).is_ok() {
        wrapped.forget();
    }
}

/// The subgroup sizes `(min, max)` when the device was requested with `subgroups`.
pub fn sizes() -> Option<(u32, u32)> {
    SIZES.with(|s| s.get())
}
