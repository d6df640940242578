//! Compiled kernels: a WGSL shader becomes a compute pipeline and its bind-group
//! layout once per device, kept in a small least-recently-used cache by shader hash.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use pollster::block_on;

use super::{lock, GpuDevice};
use crate::error::{Error, Result};
use crate::kernel::wgsl::{Shader, ENTRY_POINT};
use crate::transfer::staging::PARAMS_BYTES;

/// Compiled kernels kept per device; the least recently used goes beyond this.
pub(super) const CACHE_CAPACITY: usize = 64;

// The uniform block opens with the kernel's header: base, len, row, zero.
const _: () = assert!(PARAMS_BYTES == crate::kernel::wgsl::HEADER_BYTES);

/// A compiled kernel and the layout its bind groups follow.
pub(crate) struct Pipeline {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
    pub(super) inputs: usize,
    /// Whole-array inputs, bound after the inputs.
    pub(super) tables: usize,
    /// Words of an element's row of results.
    pub(super) outputs: usize,
    /// Words per element of each element-wise input.
    pub(super) input_words: Vec<usize>,
    /// Bytes of the uniform block: the header, then the kernel's parameter values.
    pub(super) uniform_bytes: u64,
}

#[derive(Default)]
pub(super) struct PipelineCache {
    /// Shader hash -> (pipeline, last use).
    pub(super) map: HashMap<u64, (Arc<Pipeline>, u64)>,
    tick: u64,
}

impl PipelineCache {
    fn get(&mut self, key: u64) -> Option<Arc<Pipeline>> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(&key).map(|(p, used)| {
            *used = tick;
            p.clone()
        })
    }

    fn insert(&mut self, key: u64, p: Arc<Pipeline>) {
        self.tick += 1;
        self.map.insert(key, (p, self.tick));
        while self.map.len() > CACHE_CAPACITY {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
    }
}

impl GpuDevice {
    /// The compiled pipeline for `shader`, from the cache or compiled now.
    pub(crate) fn pipeline(&self, shader: &Shader) -> Result<Arc<Pipeline>> {
        let cached = lock(&self.cache).get(shader.hash);
        if let Some(p) = cached {
            return Ok(p);
        }
        let p = Arc::new(self.compile(shader)?);
        self.compilations.fetch_add(1, Ordering::Relaxed);
        lock(&self.cache).insert(shader.hash, p.clone());
        Ok(p)
    }

    fn rejected(&self, shader: &Shader, message: String, line: u32) -> Error {
        let source_line = match line {
            0 => String::new(),
            l => shader
                .source
                .lines()
                .nth(l as usize - 1)
                .unwrap_or("")
                .trim()
                .to_string(),
        };
        Error::ShaderRejected {
            device: self.info.name.clone(),
            message,
            line,
            source_line,
        }
    }

    fn compile(&self, shader: &Shader) -> Result<Pipeline> {
        self.alive()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("hybrid kernel"),
                source: wgpu::ShaderSource::Wgsl(Cow::Borrowed(&shader.source)),
            });
        let info = block_on(module.get_compilation_info());
        let err = block_on(scope.pop());
        let first = info
            .messages
            .iter()
            .find(|m| m.message_type == wgpu::CompilationMessageType::Error);
        if let Some(m) = first {
            let line = m.location.map_or(0, |l| l.line_number);
            return Err(self.rejected(shader, m.message.clone(), line));
        }
        if let Some(e) = err {
            return Err(self.rejected(shader, e.to_string(), 0));
        }

        let inputs = shader.inputs as usize;
        let tables = shader.tables as usize;
        let read = inputs + tables;
        let storage = |read_only| wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        let mut entries: Vec<wgpu::BindGroupLayoutEntry> = (0..=read)
            .map(|k| wgpu::BindGroupLayoutEntry {
                binding: k as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: storage(k < read),
                count: None,
            })
            .collect();
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: read as u32 + 1,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: wgpu::BufferSize::new(shader.uniform_bytes.max(PARAMS_BYTES)),
            },
            count: None,
        });
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some("hybrid kernel"),
                entries: &entries,
            });
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some("hybrid kernel"),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("hybrid kernel"),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(ENTRY_POINT),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = block_on(scope.pop()) {
            self.alive()?;
            return Err(self.rejected(shader, e.to_string(), 0));
        }
        Ok(Pipeline {
            pipeline,
            layout,
            inputs,
            tables,
            outputs: shader.outputs.max(1) as usize,
            input_words: shader.input_words.clone(),
            uniform_bytes: shader.uniform_bytes.max(PARAMS_BYTES),
        })
    }

    /// Pipelines the cache holds now.
    pub(super) fn pipelines_held(&self) -> usize {
        lock(&self.cache).map.len()
    }
}
