/**
 * Names that normalization keeps verbatim: Python's keywords, and the methods of PyTorch
 * tensors, modules and optimizers that programs call on their own objects (`x.view`,
 * `self.parameters()`, `optimizer.step()`). Names reached through torch modules
 * (`nn.Conv2d`, `torch.cat`) are recognised from the program's imports, not listed here.
 */

export const PYTHON_KEYWORDS: ReadonlySet<string> = new Set([
  'False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def', 'del',
  'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal',
  'not', 'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield',
]);

export const TORCH_METHODS: ReadonlySet<string> = new Set([
  // torch.Tensor
  'abs', 'add', 'add_', 'argmax', 'backward', 'bmm', 'chunk', 'clamp', 'clone', 'contiguous', 'cpu', 'cuda',
  'detach', 'dim', 'div', 'double', 'exp', 'expand', 'expand_as', 'fill_', 'flatten', 'float', 'half', 'item',
  'log', 'masked_fill', 'matmul', 'max', 'mean', 'min', 'mul', 'mul_', 'narrow', 'ndim', 'norm', 'numel',
  'permute', 'pow', 'relu', 'repeat', 'reshape', 'shape', 'sigmoid', 'size', 'softmax', 'split', 'sqrt',
  'squeeze', 'std', 'sub', 'sum', 'tanh', 'to', 'transpose', 'type', 'unsqueeze', 'var', 'view', 'view_as',
  'zero_',
  // torch.nn.Module
  'add_module', 'apply', 'buffers', 'children', 'eval', 'modules', 'named_children', 'named_modules',
  'named_parameters', 'parameters', 'register_buffer', 'register_parameter', 'requires_grad_', 'state_dict',
  'train', 'weight', 'bias',
  // torch.optim.Optimizer
  'step', 'zero_grad', 'param_groups',
]);
