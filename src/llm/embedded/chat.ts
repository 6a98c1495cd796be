/**
 * Chat messages → prompt text with the model's own chat template (Jinja, from the GGUF
 * file), as transformers' `apply_chat_template` and vLLM render it. A final assistant
 * message is continued rather than closed when asked (vLLM's `continue_final_message`):
 * that is how a reply is prefilled with the contract's fixed header.
 */
import { Template } from '@huggingface/jinja';

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatTemplate {
  render(messages: readonly ChatTurn[], options: { continueFinal: boolean }): string;
}

/** ChatML, for a GGUF that ships no template (Qwen's and SmolLM2's templates are ChatML too). */
const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export function chatTemplate(source: string | undefined, special: { bos: string; eos: string }): ChatTemplate {
  const template = new Template(source ?? CHATML);
  const render = (messages: readonly ChatTurn[], addGenerationPrompt: boolean) =>
    template.render({
      messages,
      add_generation_prompt: addGenerationPrompt,
      bos_token: special.bos,
      eos_token: special.eos,
    });
  return {
    render(messages, { continueFinal }) {
      const last = messages[messages.length - 1];
      if (!continueFinal || last?.role !== 'assistant') return render(messages, true);
      // The template up to the assistant's turn header, then the partial reply verbatim:
      // exactly what rendering the whole conversation would produce before the reply closes.
      return render(messages.slice(0, -1), true) + last.content;
    },
  };
}
