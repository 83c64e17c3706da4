//! Masking examples, kind by kind, and properties of card numbers.

use super::spans::{fold, luhn_valid};
use super::*;
use proptest::prelude::*;

fn masked(text: &str) -> String {
    mask(text).text
}

#[test]
fn card_numbers_are_masked_in_any_common_format() {
    for (input, expected) in [
        ("my card is 4111 1111 1111 1111 ok", "my card is [CARD ••••1111] ok"),
        ("4111-1111-1111-1111", "[CARD ••••1111]"),
        (
            "卡号４１１１１１１１１１１１１１１１，谢谢",
            "卡号[CARD ••••1111]，谢谢",
        ),
        ("amex 3782 822463 10005.", "amex [CARD ••••0005]."),
        ("5555.5555.5555.4444", "[CARD ••••4444]"),
        ("card 4111111111111111 123", "card [CARD ••••1111] 123"),
        ("1. 4111 1111 1111 1111", "1. [CARD ••••1111]"),
        ("#1 4539-1488-0343-6467", "#1 [CARD ••••6467]"),
        ("4539148803436467thanks", "[CARD ••••6467]thanks"),
    ] {
        assert_eq!(masked(input), expected, "{input}");
    }
    assert_eq!(mask("4111111111111111").found, [PiiKind::Card]);
}

#[test]
fn a_card_number_split_across_a_sentence_is_masked() {
    let m = masked("my card starts 4111 1111 and then it's 1111 1111");
    // Every piece is a secret: none keeps its digits, not even the last four.
    assert_eq!(m, "my card starts [CARD] [CARD] and then it's [CARD] [CARD]");
}

#[test]
fn card_details_next_to_a_card_are_masked() {
    assert_eq!(
        masked("card 4111 1111 1111 1111 exp 09/28 cvv 123"),
        "card [CARD ••••1111] exp [EXPIRY] cvv [CVV]"
    );
    assert_eq!(masked("4111111111111111 09/28 123"), "[CARD ••••1111] [EXPIRY] [CVV]");
    assert_eq!(
        masked("信用卡有效期 09/27，安全码 456"),
        "信用卡有效期 [EXPIRY]，安全码 [CVV]"
    );
    // A date with no card in sight is a date.
    assert_eq!(masked("the statement expires 09/28"), "the statement expires 09/28");
}

#[test]
fn identity_numbers_with_valid_check_digits_are_masked() {
    assert_eq!(masked("HKID A123456(3)"), "HKID [HKID]");
    assert_eq!(masked("HKID A123456(4)"), "HKID A123456(4)");
    assert_eq!(masked("身份证号11010519491231002X。"), "身份证号[ID NUMBER]。");
    assert_eq!(masked("身份证号110105194912310021"), "身份证号110105194912310021");
    assert_eq!(masked("IBAN GB82 WEST 1234 5698 7654 32 thanks"), "IBAN [IBAN] thanks");
    assert_eq!(
        masked("IBAN GB82 WEST 1234 5698 7654 33"),
        "IBAN GB82 WEST 1234 5698 7654 33"
    );
}

#[test]
fn phones_and_emails_are_masked_but_not_the_banks_own() {
    assert_eq!(masked("call me on +852 9123 4567"), "call me on [PHONE]");
    assert_eq!(masked("我的手机号是13800138000"), "我的手机号是[PHONE]");
    assert_eq!(masked("my mobile is 9123 4567"), "my mobile is [PHONE]");
    assert_eq!(masked("write to jane.doe@mail.example"), "write to [EMAIL]");
    let bank = Masker::new(
        ["0800-520-9110", "+99 20 520 9110"],
        &["lanternbank.example".to_string()],
    );
    let text = "I called 0800-520-9110 and +99 20 520 9110, and wrote to complaints@lanternbank.example";
    assert_eq!(bank.mask(text).text, text);
    assert_eq!(masked("call 400-000-1888"), "call 400-000-1888");
}

#[test]
fn secrets_stated_in_words_are_masked() {
    for (input, expected) in [
        ("my PIN is 4821", "my PIN is [PIN]"),
        ("password: Summer#2024", "password: [PASSWORD]"),
        ("pw is Blue!Moon77 ok", "pw is [PASSWORD] ok"),
        ("the OTP was 552913", "the OTP was [OTP]"),
        ("验证码是 739201", "验证码是 [OTP]"),
        ("我的密码是abc12345", "我的密码是[PASSWORD]"),
        ("my password is sunshine", "my password is [PASSWORD]"),
    ] {
        assert_eq!(masked(input), expected, "{input}");
    }
    for input in [
        "I forgot my PIN",
        "my password is not working",
        "I never got the OTP",
        "验证码一直收不到",
        "what is the code for the branch?",
    ] {
        assert_eq!(masked(input), input);
    }
}

#[test]
fn amounts_dates_and_failing_numbers_are_not_masked() {
    for input in [
        "I paid HVD 12,000.00 on 2026-11-26",
        "reference 1234 5678 9012 3456",
        "call 400-000-1888 or 0800-520-7777",
        "order 20261126000123",
        "rate 3.85% p.a. from 01/12/2026",
        "transaction 91234567 on 26/11/2026",
    ] {
        assert_eq!(masked(input), input);
        assert!(mask(input).found.is_empty());
    }
}

#[test]
fn untouched_text_keeps_its_full_width_characters() {
    assert_eq!(
        masked("２０２６年，卡号４１１１１１１１１１１１１１１１"),
        "２０２６年，卡号[CARD ••••1111]"
    );
}

#[test]
fn account_numbers_ids_codes_and_spelled_addresses_are_masked() {
    for (input, expected) in [
        (
            "transfer to account 8834-4054-382572 failed",
            "transfer to account [ACCOUNT ••••2572] failed",
        ),
        (
            "收款账号2011533600812642，户名张伟",
            "收款账号[ACCOUNT ••••2642]，户名张伟",
        ),
        ("a/c 026785089388", "a/c [ACCOUNT ••••9388]"),
        (
            "身份证是 310104 1965 1201 0714 麻烦核对",
            "身份证是 [ID NUMBER] 麻烦核对",
        ),
        ("hk id card Y 723 416 (1) pls update", "hk id card [HKID] pls update"),
        ("verification code 97 83 87", "verification code [OTP]"),
        ("动态码 6 2 1 4 1 9 输了没反应", "动态码 [OTP] 输了没反应"),
        ("email is karen.fung at netvigator dot com", "email is [EMAIL]"),
        ("邮箱sunyy87艾特qq点com", "邮箱[EMAIL]"),
        ("新设的密码Mandy4ever73*登不上APP", "新设的密码[PASSWORD]登不上APP"),
        ("IBANCH5300055072908811746，瑞士的", "IBAN[IBAN]，瑞士的"),
        ("以后找我就用 6144 6875，旧的不用了", "以后找我就用 [PHONE]，旧的不用了"),
        ("我念一下卡号：四一八零 8437 2131 0040", "我念一下卡号：[CARD ••••0040]"),
    ] {
        assert_eq!(masked(input), expected, "{input}");
    }
    assert_eq!(mask("a/c 026785089388").found, [PiiKind::Account]);
}

#[test]
fn references_amounts_and_the_banks_numbers_stay() {
    for text in [
        "订单号202507258013368，退款2,201块还没到账",
        "Can I change my password online or do I need to visit a branch?",
        "card ending 4821 was charged LTD 1,250.00 on 2026-03-14",
        "my account has LTD 12,500.00 in it",
        "tracking number 5123 4567 for the new card",
    ] {
        assert_eq!(masked(text), text);
    }
}

#[test]
fn placeholders_are_recognised() {
    assert!(has_placeholder(&masked("my PIN is 4821")));
    assert!(has_placeholder(&masked("4111111111111111")));
    assert!(!has_placeholder("my PIN is safe"));
}

fn luhn_complete(mut digits: Vec<u8>) -> Vec<u8> {
    digits.push(0);
    let check = (0..10).find(|c| {
        *digits.last_mut().unwrap() = *c;
        let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        luhn_valid(&s)
    });
    *digits.last_mut().unwrap() = check.unwrap();
    digits
}

proptest! {
    #[test]
    fn valid_card_numbers_never_survive(
        body in proptest::collection::vec(0u8..10, 12..18),
        separator in prop::sample::select(vec!["", " ", "-", ".", "　"]),
        full_width in any::<bool>(),
        group in 3usize..6,
        prefix in "[a-zA-Z 卡号是:]{0,12}",
        suffix in "[a-zA-Z .，。]{0,12}",
    ) {
        let digits = luhn_complete(body);
        let mut number = String::new();
        for (i, d) in digits.iter().enumerate() {
            if i > 0 && i % group == 0 {
                number.push_str(separator);
            }
            let c = if full_width { char::from_u32(0xFF10 + u32::from(*d)).unwrap() } else { char::from(b'0' + d) };
            number.push(c);
        }
        let text = format!("{prefix} {number} {suffix}");
        let masked = mask(&text).text;
        let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let (folded, _) = fold(&masked);
        let leftover: String = folded.chars().filter(char::is_ascii_digit).collect();
        prop_assert!(!leftover.contains(&plain[..plain.len() - 4]), "{text} -> {masked}");
        prop_assert!(masked.contains("[CARD ••••"), "{text} -> {masked}");
    }

    #[test]
    fn a_card_number_split_across_two_messages_is_masked_in_both(
        body in proptest::collection::vec(0u8..10, 14..15),
        first_digit in 4u8..6,
        cut in 6usize..12,
        lead in prop::sample::select(vec!["my card number is", "卡号", "Card:", "the first digits are", "card no."]),
        tail in prop::sample::select(vec!["", " sorry it sent too early", "，刚才没发完", " that's the rest"]),
    ) {
        let mut digits = vec![first_digit];
        digits.extend(body);
        let digits = luhn_complete(digits);
        let plain: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let (head, rest) = plain.split_at(cut);
        let masker = Masker::default();
        let first = masker.mask(&format!("{lead} {head}"));
        let second = masker.mask_after(&format!("{rest}{tail}"), &first.text);
        for (message, part) in [(&first.text, head), (&second.text, rest)] {
            prop_assert!(!message.contains(part), "{lead} {head} | {rest}{tail} -> {} | {}", first.text, second.text);
        }
        prop_assert!(first.found.contains(&PiiKind::Card) && second.found.contains(&PiiKind::Card));
    }

    #[test]
    fn masking_never_panics_and_is_idempotent(text in "\\PC{0,80}") {
        let once = mask(&text).text;
        prop_assert_eq!(mask(&once).text, once);
    }
}
