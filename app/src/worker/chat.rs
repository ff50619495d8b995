//! The chat's job in the worker: a reply, streamed token by token; Stop keeps what was written.

use lowbit::model::Step;
use lowbit::util::now_ms;
use lowbit_app::protocol::{ChatEvent, ChatJob};

use crate::{emit, stopped, with_session, Fail};

pub async fn run(job: ChatJob) -> Result<(), Fail> {
    match job {
        ChatJob::Reply { messages, sampling, max_tokens } => {
            let (mut tokens, mut first_ms) = (0usize, 0.0);
            let stats = with_session(async |s| {
                let r = s
                    .reply(&messages, &sampling, max_tokens, |step| {
                        match step {
                            Step::Read { done, total } => emit(ChatEvent::Reading { done, total }),
                            Step::Text(text) => {
                                tokens += 1;
                                if tokens == 1 {
                                    first_ms = now_ms();
                                }
                                let decode_tps = (tokens - 1) as f64 / ((now_ms() - first_ms) / 1e3).max(1e-9);
                                emit(ChatEvent::Token { text: text.to_string(), tokens, decode_tps });
                            }
                        }
                        !stopped()
                    })
                    .await;
                let gpu_fault = s.gpu().check();
                let (_, stats) = r?;
                gpu_fault?;
                Ok(stats)
            })
            .await?;
            emit(ChatEvent::ReplyDone { stats, stopped: stopped() });
            Ok(())
        }
    }
}
