"""Text normalisation options and the three output units (char, jamo, spm)."""
import io
import unicodedata
import warnings

import pytest
import torch

from modules.transcribe.normalize import MASK_TOKENS, TextConfig, normalize_text
from modules.transcribe.tokenizers import TOKENIZERS, build_tokenizer, tokenizer_from_state

KOREAN = ["안녕하세요 반갑습니다", "제 이름은 &name&이고 전화번호는 &tel-num&입니다",
          "&company-name&에 다니는 &party-name& 당원", "주소는 &address& 카드는 &card-num&",
          "&social-security-num& 확인했습니다", "히터 켜 줘", "값은 3개 입니다"]


def test_noise_tags_and_filler_marks_are_removed():
    assert normalize_text("b/ 아/ 몬 소리야 n/ 그래 o/") == "아 몬 소리야 그래"
    assert normalize_text("u/ l/ +음 *그거") == "음 그거"
    # kept when asked
    assert "n/" in normalize_text("그래 n/", TextConfig(remove_noise_tags=False))


def test_dual_transcription_resolves_to_chosen_side():
    raw = "(3개)/(세 개) 주세요"
    assert normalize_text(raw) == "3개 주세요"
    assert normalize_text(raw, TextConfig(dual="pronunciation")) == "세 개 주세요"
    with pytest.raises(ValueError):
        normalize_text(raw, TextConfig(dual="both"))


def test_punctuation_policy_keeps_mask_tokens_whole():
    raw = "제 번호는, &tel-num&입니다!  네?"
    assert normalize_text(raw) == "제 번호는, &tel-num&입니다! 네?"
    assert normalize_text(raw, TextConfig(punctuation="remove")) == "제 번호는 &tel-num&입니다 네"
    assert normalize_text(" 히터\t 켜  줘 ", TextConfig(keep_spaces=False)) == "히터켜줘"


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_round_trip_and_masks_are_one_token(kind):
    tok = build_tokenizer(kind, KOREAN * 5, vocab_size=80)
    for text in KOREAN:
        ids = tok.encode(text)
        assert all(0 < i < len(tok) for i in ids)  # 0 is the CTC blank
        assert tok.decode(ids) == text
    for mask in MASK_TOKENS:
        (mask_id,) = tok.encode(mask)  # exactly one unit, also inside a sentence:
        assert mask_id in tok.encode(f"번호는 {mask}입니다")
    # the decoded form of a jamo/spm sequence is NFC syllables, not jamo
    decoded = tok.decode(tok.encode("안녕하세요"))
    assert decoded == unicodedata.normalize("NFC", decoded) == "안녕하세요"


@pytest.mark.parametrize("kind", sorted(TOKENIZERS))
def test_state_survives_weights_only_checkpoint(kind):
    tok = build_tokenizer(kind, KOREAN * 5, vocab_size=80)
    buf = io.BytesIO()
    torch.save({"tokenizer": tok.state_dict()}, buf)
    buf.seek(0)
    again = tokenizer_from_state(torch.load(buf, weights_only=True)["tokenizer"])
    assert len(again) == len(tok)
    for text in KOREAN:
        assert again.encode(text) == tok.encode(text)
        assert again.decode(tok.encode(text)) == text


def test_jamo_units_are_decomposed_and_orphans_dropped():
    tok = build_tokenizer("jamo", ["한국어 음성"])
    assert len(tok.encode("한")) == 3  # ㅎ ㅏ ㄴ
    assert len(tok) == 2 + 13  # blank, unk, 4 leads + 4 vowels + 4 tails + space
    lead_h = tok.index["\u1112"]  # a lone leading consonant cannot form a syllable
    assert tok.decode([lead_h] + tok.encode("국어")) == "국어"


def test_unseen_characters_map_to_unk_with_one_warning():
    tok = build_tokenizer("char", ["히터 켜 줘"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = tok.encode("뷁뷁 켜")
    assert ids[:2] == [1, 1]
    assert len([w for w in caught if "뷁" in str(w.message)]) == 1
    assert tok.decode(ids) == " 켜"
